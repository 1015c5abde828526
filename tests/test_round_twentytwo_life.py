"""Round twenty-two (A): a run's long life (many resumes, checkpoints deleted by hand), and readers while it trains."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from srunit.errors import CheckpointError


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text, text
    return text


def _copy_run(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run, copy, symlinks=True)
    (copy / "train.lock").unlink(missing_ok=True)
    return copy


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("given", ["run", "checkpoints", "latest"])
def test_a_deleted_latest_link_names_the_command_that_makes_it_again(given: str, tiny_runs: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    """`rm RUN/checkpoints/latest` with step folders left: `--resume`, `translate` and `export` said "checkpoint path
    RUN/checkpoints/latest does not exist; give a run folder (runs/NAME)" (or "no checkpoint found at RUN"), while the
    user had given one. The message now gives the `ln -s` that mends it, and that command, run as printed, does."""
    from srunit.engine import Trainer
    from srunit.runtime import resolve_checkpoint

    run = _copy_run(tiny_runs["cut"], tmp_path)
    latest = run / "checkpoints" / "latest"
    step = Path(os.readlink(latest)).name
    latest.unlink()
    path = {"run": run, "checkpoints": run / "checkpoints", "latest": latest}[given]
    expected = (f"{latest} is missing (it links the newest checkpoint, and was deleted); make it again: "
                f"ln -s {step} {latest}")
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint(path)
    assert _one_line(err.value) == expected
    if given == "run":
        with pytest.raises(CheckpointError) as err:
            Trainer.resume(run, show_progress=False)
        assert _one_line(err.value) == expected
    # the advice as printed: `ln -s step_N RUN/checkpoints/latest` (a link relative to its own folder)
    os.symlink(step, latest)
    assert resolve_checkpoint(path) == (run / "checkpoints" / step).resolve()


def test_a_run_whose_checkpoints_were_all_deleted_is_not_retrained_from_step_0(tiny_runs: dict[str, Path],
                                                                               tmp_path: Path) -> None:
    """A run resumed once (history.jsonl: resumed at step 1) whose checkpoints were then deleted by hand was trained
    from step 0 on `--resume` without a word: metrics.jsonl lost every step it had logged, its sample grids were
    replaced. It is refused now, naming the history and the way out, and nothing in the run changes."""
    from srunit.engine import Trainer

    run = _copy_run(tiny_runs["cut"], tmp_path)
    Trainer.resume(run, ["train.steps=2"], show_progress=False).fit(handle_signals=False)
    (run / "train.lock").unlink(missing_ok=True)
    logged = [line for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert len(logged) == 2
    for child in (run / "checkpoints").iterdir():
        child.unlink() if child.is_symlink() else shutil.rmtree(child)
    before = _files(run)
    with pytest.raises(CheckpointError) as err:
        Trainer.resume(run, ["train.steps=3"], show_progress=False)
    text = _one_line(err.value)
    assert text.startswith(f"{run / 'checkpoints'} holds no checkpoint, but {run / 'history.jsonl'} says the run "
                           f"was resumed at step 1: its checkpoints were deleted")
    assert "--train.name NEW_NAME" in text
    after = _files(run)
    after.pop("train.lock", None)
    before.pop("train.lock", None)
    assert after == before


def test_a_run_stopped_before_its_first_checkpoint_still_trains_from_step_0(tiny_runs: dict[str, Path],
                                                                            tmp_path: Path) -> None:
    """The refusal above reads only a history that records a resume at a later step: a run whose history holds its
    start alone (stopped before its first checkpoint) is trained from step 0 as before."""
    from srunit.engine import Trainer

    run = _copy_run(tiny_runs["cut"], tmp_path)
    shutil.rmtree(run / "checkpoints")
    trainer = Trainer.resume(run, show_progress=False)
    try:
        assert trainer.step == 0
    finally:
        trainer.release()


def test_a_one_session_run_whose_checkpoints_were_all_deleted_is_not_retrained_from_step_0(
        tiny_config, tiny_data: Path, tmp_path: Path) -> None:
    """A run trained in one session (history.jsonl: its start alone) past its first checkpoint, whose checkpoints
    were then deleted by hand, was trained from step 0 on `--resume`, dropping the steps metrics.jsonl had logged.
    A logged step past the first step the run saves at proves a checkpoint was written (saving is synchronous), so
    it is refused as the resumed run is, naming the metrics log; nothing in the run changes."""
    from srunit.engine import Trainer

    run = Trainer(tiny_config("cut", "train.steps=3", "train.checkpoint_every=2", "train.log_every=1",
                              "train.name=one", data_root=tiny_data, runs_dir=tmp_path), show_progress=False).fit()
    (run / "train.lock").unlink(missing_ok=True)
    shutil.rmtree(run / "checkpoints")
    before = _files(run)
    with pytest.raises(CheckpointError) as err:
        Trainer.resume(run, show_progress=False)
    assert _one_line(err.value).startswith(
        f"{run / 'checkpoints'} holds no checkpoint, but {run / 'metrics.jsonl'} logs step 3, past step 2, where the "
        f"run saved its first checkpoint: its checkpoints were deleted")
    after = _files(run)
    after.pop("train.lock", None)
    before.pop("train.lock", None)
    assert after == before
