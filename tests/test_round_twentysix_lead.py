"""Round twenty-six, the lead's own: what round twenty-five (A) reported and left."""

from __future__ import annotations

from pathlib import Path

import pytest

from srunit.cli.main import main


def _status(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's errors
        return int(e.code)


@pytest.mark.parametrize(("extra", "says"), [
    (["--preset", "srunit"], "--preset cannot be combined with --resume"),
    (["--train.name", "other"], "train.name cannot change on --resume"),
    (["--train.runs_dir", "elsewhere"], "train.runs_dir cannot change on --resume"),
    (["--train.seed", "5"], "train.seed cannot change on --resume"),
    (["--train.epochs", "3"], "train.epochs has no effect: train.steps 1 sets the length of the run"),
])
def test_train_help_of_a_resume_refuses_what_the_resume_refuses(
        tiny_runs: dict[str, Path], capsys: pytest.CaptureFixture, extra: list[str], says: str) -> None:
    """`train --resume RUN --help --train.name other` (or --preset, a fixed train option, a length option the run's
    budget makes void) printed the help with those values, though the resume itself refuses each."""
    run = tiny_runs["cut"]
    assert _status(["train", "--resume", str(run), *extra]) == 2
    refused = capsys.readouterr().err
    assert says in refused
    assert _status(["train", "--resume", str(run), "--help", *extra]) == 2
    captured = capsys.readouterr()
    assert says in captured.err and "config keys" not in captured.out


def test_train_help_of_a_resume_of_a_folder_that_is_no_run_says_so(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    """`train --resume FOLDER --help` of a folder without config.yaml advised a preset file ("preset ... not found:
    give a packaged preset name or a YAML file"); the resume says the folder is not a run."""
    assert _status(["train", "--resume", str(tmp_path), "--help"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path} is not a run folder (no config.yaml)" in err and "preset" not in err
