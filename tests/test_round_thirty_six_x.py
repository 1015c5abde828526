"""Round thirty-six (X): a run folder moved or deleted between `Trainer.resume` and `fit`.

- `Trainer.resume(run)`, then the folder moved or deleted, then `fit()`: fit made a new folder at the old path
  (config.yaml, a history line "resume", an empty metrics.jsonl), trained every step, then stopped saying it wrote
  nothing there; the folder it made refused the advice to extend the run and took the name of a new run (probe
  36E, D8).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from srunit.config import Config
from srunit.engine import Trainer
from srunit.errors import ConfigError

# ------------------------------------------------------------------ D8: the run folder gone before fit


def _copy(run: Path, to: Path) -> Path:
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run, to, symlinks=True)
    return to


def _count_steps(trainer: Trainer, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The steps ``trainer`` trains from now on (a list that grows with each)."""
    steps: list[int] = []
    step = trainer.runner.train_step

    def counted(batch: dict) -> Any:
        steps.append(trainer.step)
        return step(batch)

    monkeypatch.setattr(trainer.runner, "train_step", counted)
    return steps


def test_a_run_moved_after_resume_gets_nothing_at_its_old_path_and_fit_says_where_it_is(
        tiny_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`r = Trainer.resume('runs/mv1', ['train.steps=8']); mv runs/mv1 runs/mv1_moved; r.fit()`: fit trained every step,
    made runs/mv1 again (config.yaml, history.jsonl, metrics.jsonl), then said "training stopped after step 8 without
    writing into runs/mv1". Now it trains nothing, makes nothing there, names the new place, and its advice works."""
    run = _copy(tiny_runs["cut"], tmp_path / "runs" / "mv1")
    moved = tmp_path / "runs" / "mv1_moved"
    history = (run / "history.jsonl").read_text()
    trainer = Trainer.resume(run, ["train.steps=3"], show_progress=False)
    steps = _count_steps(trainer, monkeypatch)
    run.rename(moved)
    with pytest.raises(ConfigError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert f"the run folder {run} was moved, deleted or replaced since this Trainer opened it" in message, message
    assert f"it is now at {moved.resolve()}" in message and "trained nothing and wrote nothing" in message, message
    assert "\n" not in message
    assert steps == [] and not run.exists() and not run.is_symlink()
    assert (moved / "history.jsonl").read_text() == history  # the run itself is as it was
    again = Trainer.resume(str(moved.resolve()), ["train.steps=3"], show_progress=False)  # the advice
    assert again.fit() == moved.resolve() and again.step == 3


@pytest.mark.parametrize("overrides", [["train.steps=3"], []], ids=["extended", "ended"])
def test_a_run_deleted_after_resume_leaves_no_folder_at_its_path(
        tiny_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overrides: list[str]) -> None:
    """`r = Trainer.resume('runs/del1'); shutil.rmtree('runs/del1'); r.fit()`: fit made runs/del1 again with a history
    saying "resume" and no checkpoint, so `srunit train --resume runs/del1 --train.steps N`, its own advice for the
    ended run, was refused ("its checkpoints were deleted"), and the name was taken. Now nothing is made there, and
    the message says the folder was deleted."""
    run = _copy(tiny_runs["cut"], tmp_path / "runs" / "del1")
    trainer = Trainer.resume(run, overrides, show_progress=False)
    steps = _count_steps(trainer, monkeypatch)
    shutil.rmtree(run)
    with pytest.raises(ConfigError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert "there is no folder there now; the folder it opened was deleted" in message, message
    assert "a deleted run cannot be continued" in message, message
    assert steps == [] and not run.exists()


def test_a_new_run_deleted_before_fit_is_not_made_again_and_the_advice_starts_it(
        tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path) -> None:
    """`Trainer(config)` then its folder deleted, then `fit()`: the folder was made again by the first write. Now fit
    stops before it, and the advice (a new Trainer of the same config) trains the run."""
    config = tiny_config("cut", "train.steps=1", "train.name=new1", "train.loggers=[]", data_root=tiny_data,
                         runs_dir=tmp_path / "runs")
    run = tmp_path / "runs" / "new1"
    trainer = Trainer(config, show_progress=False)
    shutil.rmtree(run)
    with pytest.raises(ConfigError, match=r"start the run again with a new Trainer\(config\)"):
        trainer.fit()
    assert not run.exists()
    assert Trainer(config, show_progress=False).fit() == run and (run / "checkpoints" / "latest").is_symlink()


@pytest.mark.parametrize("call", ["fit", "save"])
def test_a_released_run_moved_before_a_later_fit_or_save_gets_no_lock_at_its_old_path(
        tiny_runs: dict[str, Path], tmp_path: Path, call: str) -> None:
    """A Trainer that released its run (`release()`, or after its fit), the folder then moved: a later `fit()` or
    `save()` locked the old path (a new folder holding train.lock) and then blamed "another Trainer or process".
    Now it says the folder was moved and makes nothing there."""
    run = _copy(tiny_runs["cut"], tmp_path / "runs" / "rel")
    trainer = Trainer.resume(run, ["train.steps=3"], show_progress=False)
    trainer.release()
    run.rename(tmp_path / "runs" / "rel_moved")
    with pytest.raises(ConfigError) as caught:
        trainer.fit() if call == "fit" else trainer.save(keep=False)
    message = str(caught.value)
    assert f"the run folder {run} was moved, deleted or replaced since this Trainer opened it" in message, message
    assert f"Trainer.{call} trained nothing and wrote nothing at {run}" in message, message
    assert "this Trainer had released it" in message, message
    assert not run.exists()
