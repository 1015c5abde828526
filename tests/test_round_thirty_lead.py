"""Round thirty (lead): what the confirmation probe of round twenty-nine (B) left."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from srunit.config import load_config
from srunit.errors import ConfigError


def _status(argv: list[str]) -> int:
    from srunit.cli.main import main

    try:
        return main(argv)
    except SystemExit as stop:  # argparse's refusals
        return int(stop.code or 0)


def test_an_existing_output_whose_lock_or_temporary_name_would_be_too_long_is_refused_before_any_work(
        tiny_runs: dict[str, Path], tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An existing empty folder of 250 bytes as `translate --output`, and an existing file of 245 bytes as `export
    --output ... --overwrite`, failed at the lock or temporary with "File name too long; check the path, its
    permissions and the free space": the name check covered only names not made yet."""
    folder = tmp_path / ("q" * 250)
    folder.mkdir()
    assert _status(["translate", "--checkpoint", str(tiny_runs["cut"]), "--input", str(tiny_data / "testA"),
                    "--output", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "is 250 bytes long; this file system takes names of 255 bytes, and srunit keeps a lock file beside it " \
           "under a name 6 bytes longer" in err and err.count("\n") == 1
    assert list(folder.iterdir()) == []
    existing = tmp_path / ("e" * 240 + ".onnx")
    existing.write_text("the user's")
    assert _status(["export", str(tiny_runs["cut"]), "--output", str(existing), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "is 245 bytes long; this file system takes names of 255 bytes, and srunit writes through a temporary " \
           "name" in err and err.count("\n") == 1
    assert existing.read_text() == "the user's"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([folder.name, existing.name])


def test_a_file_read_through_a_link_into_a_path_below_a_file_names_that_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`train --preset c.yaml` where `c.yaml -> afile/x.yaml` was told to "give a YAML file saved as UTF-8"; the file
    in the way is named now, and so is the target of a config link to nothing."""
    monkeypatch.chdir(tmp_path)
    Path("afile").write_text("not a folder")
    Path("c.yaml").symlink_to("afile/x.yaml")
    Path("d.yaml").symlink_to("nowhere.yaml")
    assert _status(["train", "--preset", "./c.yaml", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"lies below {tmp_path / 'afile'}, which is a file, not a folder; give the path of a file" in err
    assert "UTF-8" not in err and err.count("\n") == 1
    with pytest.raises(ConfigError, match="is a symbolic link to nowhere.yaml, which does not exist"):
        load_config("./d.yaml")
    assert os.readlink("c.yaml") == "afile/x.yaml" and Path("afile").read_text() == "not a folder"
