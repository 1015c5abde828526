"""Round five: a run stopped by a signal writes its sample at its last checkpoint, and the report marks a run that
ended before its planned steps (and only such a run)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from srunit.engine import Trainer
from srunit.engine.signals import TrainingStopped
from srunit.report.page import render_report
from srunit.report.runs import load_run
from srunit.runtime.run_folder import RunFolder


@pytest.mark.slow  # two trainings; the fast relative of the stop is test_run_safety's stop-signal test
def test_a_stopped_run_has_its_last_sample_and_the_report_says_it_stopped(tiny_config, tiny_data: Path,
                                                                          tmp_path: Path) -> None:
    config = tiny_config("cut", "train.steps=4", "train.sample_every=100", "train.checkpoint_every=100",
                         "train.name=s", data_root=tiny_data, runs_dir=tmp_path)
    trainer = Trainer(config, show_progress=False)
    real = trainer.runner.train_step

    def step_then_sigterm(batch):  # noqa: ANN001, ANN202 - the runner's own types
        logs = real(batch)
        if trainer.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # a scheduler's stop: handled at this step's boundary
        return logs

    trainer.runner.train_step = step_then_sigterm
    with pytest.raises(TrainingStopped) as stopped:
        trainer.fit(handle_signals=True)
    run = RunFolder(tmp_path / "s")
    assert stopped.value.step == 2 and run.sample(2).is_file()  # sample_every 100: written because it stopped
    loaded = load_run(run.path)
    assert loaded.stopped and loaded.planned_steps == 4 and loaded.checkpoint_step == 2
    assert "2 of 4 (stopped; continue with srunit train --resume)" in render_report([loaded])

    Trainer.resume(run.path, show_progress=False).fit()
    finished = load_run(run.path)
    assert not finished.stopped and finished.steps_shown == "4"
    assert "(stopped" not in render_report([finished])
