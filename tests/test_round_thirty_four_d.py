"""Round thirty-four (D): a tuning study interrupted or moved, in one line and resumable (the defects of round
thirty-four (A)'s probe: its cases are named in each test)."""

from __future__ import annotations

import os
import re
import signal
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from srunit.errors import FolderMoved, SrunitError
from srunit.tune.study import Trials, TuneSettings, open_study, study_summary, work
from srunit.tune.targets import FolderTarget

SPACE = {"method.lambda_nce": {"low": 0.5, "high": 2.0}}


def _settings(tmp_path: Path, trials: int = 2) -> TuneSettings:
    for folder in ("data", "val", "labels"):
        (tmp_path / folder).mkdir(exist_ok=True)
    target = FolderTarget(str(tmp_path / "data"), str(tmp_path / "val"), str(tmp_path / "labels"), "seg.onnx", 3)
    return TuneSettings(preset="cut", target=target.to_dict(), space=SPACE, study_name="s", trials=trials,
                        sampler="random")


def _trials(tmp_path: Path, trials: int = 2) -> Trials:
    out = tmp_path / "tu"
    out.mkdir(exist_ok=True)
    return Trials(_settings(tmp_path, trials), str(out), f"sqlite:///{out / 'study.db'}")


def _moving_run(moved: str) -> Any:
    """A trial's run during which the tuning folder is moved to ``moved`` (`mv tJ2 tJ2-moved`): the trial's result
    then goes to a storage whose folder is gone."""
    def run(self: Trials, params: dict[str, Any], seed: int, *, on_stop: Any = None) -> tuple[float, dict[str, Any]]:
        os.rename(self.out, moved)
        return 0.5, {"runs": ["r"]}

    return run


# A job target runs in a spawned process: a module-level function of this file.
def _moving_worker(trials: Trials, moved: str, index: int) -> None:
    Trials.run = _moving_run(moved)  # type: ignore[method-assign]  # in this spawned process only
    work(trials, index)


def test_a_tuning_folder_moved_while_a_trial_runs_stops_its_worker_with_the_folder_named(tmp_path: Path,
                                                                                       monkeypatch: Any) -> None:
    """`mv tJ2 tJ2-moved` while a trial trained: SQLite's "attempt to write a readonly database", then Optuna's
    `AssertionError: Should not reach.` ended the worker (round thirty-four (A), class c)."""
    trials = _trials(tmp_path)
    moved = tmp_path / "tu-moved"
    monkeypatch.setattr(Trials, "run", _moving_run(str(moved)))
    with pytest.raises(FolderMoved, match=rf"^{re.escape(trials.out)} was moved or replaced while the tuning study"):
        work(trials)
    assert (moved / "study.db").is_file()


@pytest.mark.slow  # 4 s: two spawned worker processes
def test_a_tuning_folder_moved_under_two_workers_prints_no_traceback_and_no_line_of_theirs(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """`srunit tune synthscapes ... --jobs 2 &`, then `mv tJ2 tJ2-moved`: 254 lines of traceback (each worker's
    `Process workerN: Traceback`, SQLite, Optuna's StorageInternalError) before srunit's one line (round thirty-four
    (A), class c). Each worker now leaves without a word; the caller, which holds the folder open, says it once."""
    from srunit._atomic import FolderWriter
    from srunit.synthscapes.parallel import Job, run_jobs

    trials = _trials(tmp_path)
    open_study(trials.storage, trials.settings)  # as run_tune makes it before the workers start
    out, moved = Path(trials.out), tmp_path / "tu-moved"
    with FolderWriter(out) as home:
        with pytest.raises(SrunitError, match=r"1 job\(s\) failed: worker0 \(exit code 2\)"):
            run_jobs([Job("worker0", _moving_worker, (trials, str(moved), 0))], 2)
        with pytest.raises(FolderMoved, match=rf"it is now at {re.escape(str(moved))}\)"):
            home.check_in_place("the tuning study")
    err = capfd.readouterr().err
    assert "Traceback" not in err and "[worker0]" not in err.replace("[worker0] INFO", ""), err


def _scored_when_interrupted() -> None:
    raise KeyboardInterrupt  # a Ctrl-C passed on to a worker while its trial's run is scored (no training's handler)


@pytest.mark.slow  # 2 s: a spawned process
def test_a_worker_interrupted_outside_training_says_so_in_one_line(capfd: pytest.CaptureFixture[str]) -> None:
    """`--jobs 2` and Ctrl-C while a worker scored its run: the worker's KeyboardInterrupt was a traceback of its
    process (`Process worker0: Traceback ...`); its trial is put back by `work` (see the test below)."""
    from srunit.synthscapes.parallel import Job, run_jobs

    with pytest.raises(SrunitError, match=r"worker0 \(exit code 130\)"):
        run_jobs([Job("worker0", _scored_when_interrupted, ())], 1)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "[worker0] interrupted" in err, err


def test_optunas_heartbeat_thread_failing_to_write_prints_no_traceback(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`--jobs 1`, the folder moved: once in 7 tries Optuna's heartbeat thread printed ~90 lines (`Exception in
    thread Thread-1 (_record_heartbeat)` ... StorageInternalError) before srunit's line (round thirty-four (A))."""
    import optuna
    from optuna.storages._heartbeat import HeartbeatThread

    class Failing:
        def record_heartbeat(self, trial_id: int) -> None:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.")

        def get_heartbeat_interval(self) -> int:
            return 1

    printed: list[BaseException | None] = []  # what Python's hook would print (pytest's own hook stands there now)
    monkeypatch.setattr(threading, "excepthook", lambda args: printed.append(args.exc_value))
    trials = _trials(tmp_path)
    open_study(trials.storage, trials.settings)
    beat = HeartbeatThread(0, Failing())  # type: ignore[arg-type]
    beat.start()
    beat.join()

    def other() -> None:
        raise ValueError("another thread's own failure")

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert [type(e).__name__ for e in printed] == ["ValueError"]  # every other thread's goes to the hook as before


def _interrupt_self() -> None:
    os.kill(os.getpid(), signal.SIGINT)  # Python runs its handler before the next line of this thread


@pytest.mark.parametrize("where", ["while Optuna records the trial", "before its training catches signals",
                                   "while its run is scored"])
def test_ctrl_c_in_a_trial_outside_its_training_puts_its_parameters_back_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, where: str) -> None:
    """Ctrl-C while a trial's run was scored lost its parameters (the rerun listed it as FAIL and trained new ones);
    Ctrl-C right after the `trial 0:` line left trial 1 marked running, so the same command could continue nothing
    for 180 s (round thirty-four (A), classes d and e). Now the trial is marked interrupted and its parameters
    come first in the next call, as a Ctrl-C inside training does (docs/tuning.md)."""
    import optuna
    from optuna.trial import TrialState

    from srunit.engine import trainer

    # Ctrl-C as a terminal gives it: Python's own handler, whatever an earlier test in this process left on SIGINT
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    trials = _trials(tmp_path, trials=2)
    scored: list[str] = []

    def score(self: FolderTarget, run_dir: Path) -> dict[str, Any]:
        scored.append(str(run_dir))
        if where == "while its run is scored" and len(scored) == 2:
            _interrupt_self()
        return {"segmentation": {"mean_iou": 0.25 * len(scored)}}

    started: list[str] = []

    def train_to_end(config: Any, show_progress: bool = False) -> Path:
        started.append(config.train.name)
        if where == "before its training catches signals" and len(started) == 2:
            _interrupt_self()
        return Path(trials.out) / "trials" / config.train.name

    sampled = []
    before_trial = optuna.samplers.RandomSampler.before_trial

    def recording(self: Any, study: Any, trial: Any) -> None:  # in `study.ask()`, once the trial is created
        sampled.append(trial.number)
        if where == "while Optuna records the trial" and len(sampled) == 2:
            _interrupt_self()
        before_trial(self, study, trial)

    def run_of(self: Trials, overrides: dict[str, Any], seed: int) -> tuple[str, Any, dict[str, Any]]:
        name = f"r{seed}-{overrides['method.lambda_nce']:.6f}"  # one run per parameters and seed, as the hash names
        return name, SimpleNamespace(train=SimpleNamespace(name=name)), {}

    monkeypatch.setattr(Trials, "run_of", run_of)
    monkeypatch.setattr(trainer, "train_to_end", train_to_end)
    monkeypatch.setattr(FolderTarget, "score", score)
    monkeypatch.setattr(optuna.samplers.RandomSampler, "before_trial", recording)
    with pytest.raises(KeyboardInterrupt):
        work(trials)
    study = open_study(trials.storage, trials.settings)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING], states

    work(trials)  # the same command again: at once, no trial held by a stale mark
    rows = study_summary(study, trials.settings, "study.db")["trials"]
    assert [r["state"] for r in rows] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert rows[1]["outcome"] == "interrupted; run again as trial 2"
    assert rows[2]["params"] == rows[1]["params"] and rows[2]["seed"] == rows[1]["seed"] == 1001
    assert len(set(started)) == 2  # trial 2 trained the run of trial 1's parameters, no third one


def test_a_study_with_no_finished_trial_shows_no_table_and_names_only_what_was_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A study with 0 finished trials ended `tuning folder: tJ (study.json, best.yaml, trials/)` though no best.yaml
    was written, under a table header of 3 cells over a separator of 2 (round thirty-four (A), class e)."""
    from srunit.cli.main import main
    from srunit.tune import study as study_module

    def run_tune(out: Path, settings: TuneSettings, **kwargs: Any) -> dict[str, Any]:
        Path(out).mkdir()
        (Path(out) / "study.json").write_text("{}")
        return {"study": "s", "objective": "mean_iou", "direction": "maximize", "best": None,
                "trials": [{"number": 0, "state": "RUNNING", "params": {}, "value": None}]}

    monkeypatch.setattr(study_module, "run_tune", run_tune)
    for folder in ("data", "val", "labels"):
        (tmp_path / folder).mkdir()
    monkeypatch.chdir(tmp_path)
    code = main(["tune", "data", "--preset", "cut", "--data", "data", "--val-images", "val", "--val-labels", "labels",
                 "--segmenter", "seg.onnx", "--classes", "3", "--out", "tJ", "--no-progress"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("|") for line in lines), lines
    assert lines[-1].endswith("tuning folder: tJ (study.json)"), lines
    assert "not finished: 0 (running)" in lines


def test_a_study_summary_table_has_as_many_cells_in_each_row_as_in_its_header() -> None:
    from srunit.cli.tune import format_summary

    trial = {"number": 3, "state": "COMPLETE", "params": {"b": 0.5, "a": 4}, "value": 0.0253}
    text = format_summary({"study": "s", "objective": "mean_iou", "direction": "maximize", "best": trial,
                           "trials": [trial]})
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table == ["| trial | mean_iou | a | b |", "|---|---|---|---|", "| 3 | 2.53% | 4 | 0.5 |"]
