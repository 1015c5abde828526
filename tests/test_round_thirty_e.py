"""Round thirty (E): a resume refused after it wrote, a run folder moved while it trains, a lock on a read-only
disk."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from srunit.config import Config
from srunit.engine import Trainer
from srunit.errors import ConfigError


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _folder(path: Path) -> None:
    path.mkdir()


def _latin1(path: Path) -> None:
    path.write_bytes('{"step": 1, "note": "caf\xe9"}\n'.encode("latin-1"))


@pytest.mark.parametrize(("log", "make", "said"), [
    ("history.jsonl", _fifo, "is a FIFO"), ("metrics.jsonl", _fifo, "is a FIFO"),
    ("metrics.jsonl", _folder, "is a folder"), ("history.jsonl", _folder, "is a folder"),
    ("history.jsonl", _latin1, "UTF-8")])
def test_a_resume_refused_for_a_log_it_appends_to_has_rewritten_nothing(
        log: str, make: Callable[[Path], None], said: str, tiny_runs: dict[str, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int]) -> None:
    """`train --resume RUN --train.steps 3` with history.jsonl a FIFO logged "resumed", then refused, but config.yaml
    said steps: 3 and run.json total_steps: 3 already; after the advice was followed the history said "changed": {}.
    The logs are read with the folders checked before anything is written."""
    run = tmp_path / "j2"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    (run / log).unlink(missing_ok=True)
    make(run / log)
    before = {name: (run / name).read_bytes() for name in ("config.yaml", "run.json")}
    assert cli_status(["train", "--resume", str(run), "--train.steps", "3"]) == 2
    err = capsys.readouterr().err
    assert said in err and str(run / log) in err and "nothing was changed" in err
    assert "resumed" not in err and err.count("\n") == 1
    assert {name: (run / name).read_bytes() for name in before} == before


@pytest.mark.slow
def test_a_resume_run_again_after_following_the_advice_records_its_change(
        tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    run = tmp_path / "j2"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    (run / "history.jsonl").unlink()
    os.mkfifo(run / "history.jsonl")
    assert cli_status(["train", "--resume", str(run), "--train.steps", "3", "--no-progress"]) == 2
    (run / "history.jsonl").rename(run / "history.jsonl.bak")  # the advice
    assert cli_status(["train", "--resume", str(run), "--train.steps", "3", "--no-progress"]) == 0
    last = json.loads((run / "history.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "resume" and last["step"] == 1 and last["changed"] == {"train.steps": [1, 3]}


def test_a_run_folder_moved_while_it_trains_gets_nothing_more_at_its_old_path(
        tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mv runs/sw runs/sw_moved; mkdir runs/sw; echo mine > runs/sw/notes.txt` while sw trained: its later
    checkpoints, `latest` and sample grids went into the new runs/sw beside notes.txt. Now it stops at its next
    write, names where the run is, and the new folder holds the user's file alone."""
    runs = tmp_path / "runs"
    trainer = Trainer(tiny_config("cut", "train.steps=6", "train.checkpoint_every=2", "train.sample_every=2",
                                  "train.log_every=1", "train.loggers=[]", "train.name=sw", data_root=tiny_data,
                                  runs_dir=runs), show_progress=False)
    run, moved = runs / "sw", runs / "sw_moved"
    step = trainer.runner.train_step

    def train_step_then_move(batch: dict) -> dict:
        logs = step(batch)
        if trainer.step == 3:
            run.rename(moved)
            run.mkdir()
            (run / "notes.txt").write_text("mine")
        return logs

    monkeypatch.setattr(trainer.runner, "train_step", train_step_then_move)
    with pytest.raises(ConfigError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert "was moved or replaced while training" in message and "after step 3" in message
    assert f"srunit train --resume {moved.resolve()}" in message
    assert [p.name for p in run.iterdir()] == ["notes.txt"] and (run / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in (moved / "checkpoints").iterdir()) == ["latest", "step_00000002"]
    assert [json.loads(line)["step"] for line in (moved / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def _lock_on_a_read_only_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.open

    def refuse(path: str | os.PathLike[str], flags: int, *args: int, **kwargs: object) -> int:
        if str(path).endswith("train.lock"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)


def test_a_lock_on_a_read_only_file_system_is_not_advised_away_with_rm(
        tiny_runs: dict[str, Path], tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        cli_status: Callable[[list[str]], int]) -> None:
    """`train --resume ro` on a read-only mount was told to `rm ro/train.lock`, which fails there (and a new run was
    told to remove a lock that did not exist); it is told the file system is read-only, and to use another place."""
    run = tmp_path / "ro"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    _lock_on_a_read_only_disk(monkeypatch)
    assert cli_status(["train", "--resume", str(run), "--train.steps", "3"]) == 2
    err = capsys.readouterr().err
    assert f"{run} is on a read-only file system" in err and "writable file system" in err
    assert "rm " not in err and err.count("\n") == 1
    with pytest.raises(ConfigError, match="is on a read-only file system") as caught:
        Trainer(tiny_config("cut", "train.steps=1", "train.name=new", data_root=tiny_data, runs_dir=tmp_path / "runs"),
                show_progress=False)
    assert "rm " not in str(caught.value)
