"""Round thirty-six (lead): what earlier rounds noted and left."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


class _Checked(Exception):
    """Raised where the benchmark goes on after its runs' configs were checked."""


@pytest.mark.parametrize(("method", "size", "advice", "followed"), [
    ("cut", 20, "use e.g. --size 24, or --model.n_layers_d 2 with --size 20",
     [["--size", "24"], ["--model.n_layers_d", "2", "--size", "20"]]),
    ("drit", 32, "use e.g. --size 64", [["--size", "64"]]),
])
def test_a_size_a_benchmarks_runs_cannot_take_is_advised_in_the_commands_own_options(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int], method: str, size: int, advice: str,
        followed: list[list[str]]) -> None:
    """`bench synthscapes --size 20`: `... use e.g. data.crop_size 24, or model.n_layers_d 2 with data.crop_size 20`,
    where the benchmark refuses --data.crop_size (its runs' crop is --size) (round thirty-five (D), noted). The
    advice names --size and --model.n_layers_d, and each way out it gives is taken."""
    import srunit.synthscapes.benchmark as bench

    def checked(*args: object, **kwargs: object) -> None:
        raise _Checked

    monkeypatch.setattr(bench, "resolve_device", checked)
    base = ["bench", "synthscapes", "--methods", method, "--baseline", method, "--seeds", "1", "--no-report",
            "--out", str(tmp_path / "b")]
    assert cli_status([*base, "--size", str(size)]) == 2
    err = capsys.readouterr().err
    assert f"--size {size} does not fit {method} (it is each run's data.crop_size): " in err, err
    assert err.rstrip().endswith(advice), err
    for options in followed:
        with pytest.raises(_Checked):
            cli_status([*base, *options])
    assert not (tmp_path / "b").exists()


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's /sys")
@pytest.mark.parametrize("command", [["tune", "synthscapes", "--preset", "cut", "--trials", "1"],
                                     ["bench", "synthscapes", "--methods", "cut", "--baseline", "cut", "--seeds", "1"]])
def test_a_records_folder_that_takes_no_files_is_refused_before_any_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int],
        command: list[str]) -> None:
    """`tune synthscapes --records /sys/rec --cache-dir C`: trial 0 trained, then its record failed (`/sys/rec:
    Operation not permitted`), the trial left failed (round thirty-five (D), noted): a permission check passes as
    root there. The folder is tried before any work, and a records folder that can be made is left as it was."""
    from srunit.eval.study_records import check_records_folder

    out = tmp_path / "o"
    small = ["--size", "32", "--steps", "1", "--num-pool", "24", "--num-test", "2", "--segmenter-steps", "2",
             "--segmenter-images", "8", "--no-progress"]
    assert cli_status([*command, *small, "--records", "/sys/srunit-rec", "--cache-dir", str(tmp_path / "c"),
                       "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--records /sys/srunit-rec: no record can be written there (" in err and err.count("\n") == 1, err
    assert not out.exists() and not Path("/sys/srunit-rec").exists()
    check_records_folder(tmp_path / "new" / "rec")  # one that can be made: not left behind by the check
    assert not (tmp_path / "new").exists()
    (tmp_path / "rec").mkdir()
    check_records_folder(tmp_path / "rec")
    assert list((tmp_path / "rec").iterdir()) == []
