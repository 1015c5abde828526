"""srunit._outputs: the output guard compares by file identity, names are path components, one writer at a
time, folders appear whole."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from srunit._outputs import OutputLock, building_folder, check_name, check_name_lengths, disk_full, guard_output
from srunit.errors import ConfigError, DataError


def test_identity_not_path_text(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.png").write_bytes(b"a")
    os.link(data / "a.png", tmp_path / "hard.png")  # another name of the same file
    with pytest.raises(DataError, match="is --input"):
        guard_output(tmp_path / "hard.png", "--out", inputs=[("--input", data / "a.png")], overwrite=True)
    (tmp_path / "alias").symlink_to(data)
    for out in (tmp_path / "alias" / "new" / "x.json", tmp_path / "elsewhere" / ".." / "data" / "x.json"):
        with pytest.raises(DataError, match="is inside --input"):
            guard_output(out, "--out", inputs=[("--input", data)])
    assert guard_output(tmp_path / "out" / "x.json", "--out", inputs=[("--input", data)]) == tmp_path / "out" / "x.json"


def test_run_folders_and_designated_places(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("{}")
    with pytest.raises(DataError, match="inside the run folder"):
        guard_output(run / "config.yaml", "--out", overwrite=True)
    with pytest.raises(DataError, match="inside the run folder"):
        guard_output(run / "sub" / "x.html", "--out")
    assert guard_output(run / "report.html", "--out", inputs=[("PATH", run)], designated=[run / "report.html"])


def test_existing_files_need_overwrite_and_empty_paths_are_refused(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("mine")
    with pytest.raises(ConfigError, match="--overwrite"):
        guard_output(tmp_path / "x.json", "--json")
    assert guard_output(tmp_path / "x.json", "--json", overwrite=True)
    with pytest.raises(ConfigError, match="--json is an empty path"):
        guard_output("", "--json")


@pytest.mark.parametrize("name", ["", " ", ".", "..", "a/b", "../x", "a\\b", "nul\0"])
def test_names_are_path_components(name: str) -> None:
    with pytest.raises(ConfigError, match="--left-name .* must be a folder name"):
        check_name(name, "--left-name")


def test_names_fit_the_file_system_with_the_temporary_affix(tmp_path: Path) -> None:
    check_name_lengths([tmp_path / ("a" * 200 + ".png")], "--output")
    with pytest.raises(ConfigError, match="bytes long"):
        check_name_lengths([tmp_path / ("a" * 245 + ".png")], "--output")
    with pytest.raises(ConfigError, match="--name: the name is 250 bytes long"):
        check_name("x" * 250, "--name")


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = OutputLock(out, "--output")
    with pytest.raises(ConfigError, match=f"--output {out} is being written by pid {os.getpid()}"):
        OutputLock(out, "--output")
    first.release()
    assert not (tmp_path / ".out.lock").exists()
    with OutputLock(out, "--output"):
        pass


def test_folders_appear_whole_and_leftovers_are_tidied(tmp_path: Path) -> None:
    out = tmp_path / "set"
    stale = tmp_path / ".set.partial-dead0000"
    stale.mkdir()
    with pytest.raises(RuntimeError):
        with building_folder(out, "--out") as tmp:
            tmp.write_bytes("half.png", b"x")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # neither the failed set nor the leftover
    with building_folder(out, "--out") as tmp:
        tmp.write_bytes("all.png", b"x")
        assert not out.exists()
    assert [p.name for p in out.iterdir()] == ["all.png"] and [p.name for p in tmp_path.iterdir()] == ["set"]


def test_disk_full_names_the_file() -> None:
    with pytest.raises(DataError, match=r"--out o.png: the disk is full .*; 1 of 2"):
        with disk_full("o.png", "--out", "1 of 2 files were written"):
            raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(PermissionError):
        with disk_full("o.png", "--out"):
            raise PermissionError(errno.EACCES, "denied")
