"""Round thirty-five (B): Ctrl-C stops a tuning study of several jobs (the defects of round thirty-five (A)'s probe:
its cases are named in each test). Each test sends the signal to its own process at a known point."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from srunit.engine.signals import StopSignals, TrainingStopped
from srunit.tune import study as study_module
from srunit.tune.study import Trials, TuneSettings, open_study, work
from srunit.tune.targets import FolderTarget

SPACE = {"method.lambda_nce": {"low": 0.5, "high": 2.0}}


def _trials(tmp_path: Path, trials: int) -> Trials:
    for folder in ("data", "val", "labels"):
        (tmp_path / folder).mkdir(exist_ok=True)
    target = FolderTarget(str(tmp_path / "data"), str(tmp_path / "val"), str(tmp_path / "labels"), "seg.onnx", 3)
    settings = TuneSettings(preset="cut", target=target.to_dict(), space=SPACE, study_name="s", trials=trials,
                            sampler="random")
    out = tmp_path / "tu"
    out.mkdir(exist_ok=True)
    return Trials(settings, str(out), f"sqlite:///{out / 'study.db'}")


def _interrupt_self() -> None:
    os.kill(os.getpid(), signal.SIGINT)  # Python runs its handler before the next line of this thread


@pytest.fixture
def python_sigint(request: pytest.FixtureRequest) -> None:
    """SIGINT as a terminal gives it (Python's own handler), put back as it was after the test."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))


def _states(trials: Trials) -> list[str]:
    return [t.state.name for t in open_study(trials.storage, trials.settings).get_trials(deepcopy=False)]


def _fake_runs(monkeypatch: pytest.MonkeyPatch, trials: Trials, train: Any) -> list[str]:
    """Trials whose runs are named by their parameters, trained by ``train(run_dir)`` (in place of the Trainer's
    `fit`, under srunit's own `train_to_end`) and scored at once; returns the names of the runs trained, in order."""
    from srunit.engine import trainer

    started: list[str] = []

    def run_of(self: Trials, overrides: dict[str, Any], seed: int) -> tuple[str, Any, dict[str, Any]]:
        name = f"r{seed}-{overrides['method.lambda_nce']:.6f}"
        run_dir = Path(trials.out) / "trials" / name
        return name, SimpleNamespace(train=SimpleNamespace(name=name, run_dir=run_dir)), {}

    class Trainer:
        def __init__(self, config: Any, show_progress: bool = True) -> None:
            self.run_dir = config.train.run_dir

        def fit(self, handle_signals: bool = False) -> Path:
            started.append(self.run_dir.name)
            train(self.run_dir)
            return self.run_dir

    monkeypatch.setattr(Trials, "run_of", run_of)
    monkeypatch.setattr(trainer, "Trainer", Trainer)
    monkeypatch.setattr(FolderTarget, "score", lambda self, run_dir: {"segmentation": {"mean_iou": 0.25}})
    return started


def _trained_to_its_last_step_with_a_stop_request(run_dir: Path) -> None:
    """What the trainer does when a stop signal comes during its last step: the handler records the request, the
    run finishes (its last checkpoint written) and the previous handler is put back, the request not acted on."""
    checkpoint = run_dir / "checkpoints" / "step_00000002"
    checkpoint.mkdir(parents=True)
    (checkpoint / "state.pt").write_bytes(b"")
    (run_dir / "checkpoints" / "latest").symlink_to("step_00000002")
    with StopSignals():
        _interrupt_self()


def test_a_stop_signal_during_a_trials_last_training_step_stops_the_worker_with_the_trial_put_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, python_sigint: None) -> None:
    """`--jobs 2`, SIGINT to srunit 0.2-0.3 s after `trial 0:`: the workers trained and scored new trials until all
    10 were finished, then the command said both were checkpointed (round thirty-five (A), class b). A request that
    came while a tiny trial took its last step was dropped with the training's handler."""
    trials = _trials(tmp_path, trials=3)
    started = _fake_runs(monkeypatch, trials, _trained_to_its_last_step_with_a_stop_request)
    with pytest.raises(TrainingStopped) as stopped:
        work(trials)
    assert stopped.value.signal == signal.SIGINT and stopped.value.step == 2
    assert len(started) == 1  # no other trial trained
    assert _states(trials) == ["FAIL", "WAITING"]  # trial 0 put back, with its parameters, to be scored on the rerun


def test_a_ctrl_c_between_two_trials_ends_the_worker_before_it_asks_for_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, python_sigint: None) -> None:
    """A stop that reaches a worker between trials (round thirty-five (A)'s race) ends its loop before Optuna's ask:
    no trial is created, failed and queued again for it."""
    trials = _trials(tmp_path, trials=3)
    _fake_runs(monkeypatch, trials, lambda run_dir: None)
    finished = study_module._finished
    calls: list[int] = []

    def finished_then_interrupted(study: Any) -> int:  # the loop's test, between trial 0's tell and trial 1's ask
        calls.append(1)
        if len(calls) == 2:
            _interrupt_self()
        return finished(study)

    monkeypatch.setattr(study_module, "_finished", finished_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        work(trials)
    assert _states(trials) == ["COMPLETE"]


def test_two_ctrl_cs_while_optuna_records_a_trial_leave_it_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, python_sigint: None) -> None:
    """`pkill -INT -f srunit` (each worker gets its own SIGINT and the one its parent passes on) during Optuna's
    tell: `Process worker1: Traceback` with Optuna's `UnboundLocalError: ... 'updated_state'`, a trial left FAIL
    without its parameters queued and another RUNNING (round thirty-five (A), class c). The first was held, the
    second raised inside the tell."""
    from optuna.storages import RDBStorage

    trials = _trials(tmp_path, trials=2)
    _fake_runs(monkeypatch, trials, lambda run_dir: None)
    set_state = RDBStorage.set_trial_state_values

    def set_state_interrupted(self: Any, trial_id: int, state: Any, values: Any = None) -> bool:
        _interrupt_self()
        _interrupt_self()
        return set_state(self, trial_id, state, values)

    monkeypatch.setattr(RDBStorage, "set_trial_state_values", set_state_interrupted)
    with pytest.raises(KeyboardInterrupt):
        work(trials)
    assert _states(trials) == ["COMPLETE"]  # recorded whole; nothing RUNNING, no trial begun after it


def test_a_job_leaves_with_its_line_in_one_write_and_ignores_a_later_sigint(
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """`[worker1] interrupted[worker0] INFO ...`: print's two writes let the other job's line in before the newline;
    and a second SIGINT while the job exited raised KeyboardInterrupt in torch's atexit handler (`Exception ignored
    in atexit callback ... _del_library`), round thirty-five (A)."""
    from srunit.synthscapes import parallel

    previous = signal.getsignal(signal.SIGINT)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    writes: list[str] = []
    monkeypatch.setattr("sys.stderr", SimpleNamespace(write=writes.append, flush=lambda: None))
    with pytest.raises(SystemExit) as ended:
        parallel._leave("[worker1] interrupted", 130)
    assert ended.value.code == 130
    assert writes == ["[worker1] interrupted\n"]
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def _finishes_whatever_comes(ready: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a job at the end of its work: the stop finds it finishing
    Path(ready).touch()
    time.sleep(1)


def _waits_for_the_stop(ready: str) -> None:
    Path(ready).touch()
    time.sleep(60)  # a SIGINT ends it (KeyboardInterrupt: `[b] interrupted`, status 130)


def _interrupted_once_ready(monkeypatch: pytest.MonkeyPatch, ready: list[Path]) -> None:
    """The calling process of `run_jobs` gets SIGINT once every job has made its file in ``ready``."""
    import multiprocessing.connection

    from srunit.synthscapes import parallel

    wait = multiprocessing.connection.wait

    def wait_then_interrupted(objects: Any, timeout: float | None = None) -> Any:
        if not all(r.exists() for r in ready):
            deadline = time.monotonic() + 60
            while not all(r.exists() for r in ready) and time.monotonic() < deadline:
                time.sleep(0.05)
            _interrupt_self()  # every job in its work: each is sent the stop
            return []
        return wait(objects, timeout)

    monkeypatch.setattr(parallel.multiprocessing.connection, "wait", wait_then_interrupted)


@pytest.mark.slow  # 4 s: two spawned processes
def test_a_stop_names_only_the_jobs_it_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               python_sigint: None) -> None:
    """`bench synthscapes --jobs 2`, Ctrl-C: `2 running job(s) checkpointed (unmatched/p1-seed0, ...)`, naming seed0
    whose job finished just then (round thirty-five (A), class d)."""
    from srunit.synthscapes import parallel

    ready = [tmp_path / "a", tmp_path / "b"]
    _interrupted_once_ready(monkeypatch, ready)
    with pytest.raises(parallel.JobsStopped, match=r"1 running job\(s\) stopped \(b\),"):
        parallel.run_jobs([parallel.Job("a", _finishes_whatever_comes, (str(ready[0]),)),
                           parallel.Job("b", _waits_for_the_stop, (str(ready[1]),))], 2)


@pytest.mark.slow  # 2 s: a spawned process
def test_a_stop_that_comes_as_the_last_job_finishes_leaves_the_work_done(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        python_sigint: None) -> None:
    """`tune synthscapes --trials 4 --jobs 2`, `pkill -INT -f srunit` as the last trial was recorded: the study was
    complete, yet the command ended `stopped by SIGINT; 2 running job(s) checkpointed (worker0, worker1); rerun the
    same command to continue` (round thirty-five (B), by hand)."""
    from srunit.synthscapes import parallel

    ready = [tmp_path / "a"]
    _interrupted_once_ready(monkeypatch, ready)
    assert list(parallel.run_jobs([parallel.Job("a", _finishes_whatever_comes, (str(ready[0]),))], 1)) == ["a"]


def test_a_ctrl_c_as_a_workers_last_trial_is_recorded_finds_its_work_done(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, python_sigint: None) -> None:
    """The same, in the worker: the trial it held the Ctrl-C for is whole and the study complete, so the worker
    ends as it would have (it said `[worker1] interrupted` after the last trial)."""
    from optuna.storages import RDBStorage

    trials = _trials(tmp_path, trials=1)
    _fake_runs(monkeypatch, trials, lambda run_dir: None)
    set_state = RDBStorage.set_trial_state_values

    def set_state_interrupted(self: Any, trial_id: int, state: Any, values: Any = None) -> bool:
        _interrupt_self()
        return set_state(self, trial_id, state, values)

    monkeypatch.setattr(RDBStorage, "set_trial_state_values", set_state_interrupted)
    work(trials)
    assert _states(trials) == ["COMPLETE"]


def test_a_ctrl_c_that_a_library_turns_into_another_error_while_a_run_is_scored_puts_the_trial_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, python_sigint: None) -> None:
    """`--jobs 2`, Ctrl-C as a worker loaded its run's generator to score it: `[worker0] error: .../G.safetensors is
    not a readable safetensors file (could not determine the shape of object type 'torch.storage.UntypedStorage');
    it is damaged or truncated`, and the trial failed with its parameters not queued again (round thirty-five (B),
    found by hand): safetensors' reader turned the KeyboardInterrupt into another exception."""
    from srunit.errors import CheckpointError

    trials = _trials(tmp_path, trials=2)
    _fake_runs(monkeypatch, trials, lambda run_dir: None)

    def score(self: FolderTarget, run_dir: Path) -> dict[str, Any]:
        try:
            _interrupt_self()
        except KeyboardInterrupt as err:  # what the library did with it
            raise CheckpointError(f"{run_dir}/G.safetensors is not a readable safetensors file") from err
        return {}

    monkeypatch.setattr(FolderTarget, "score", score)
    with pytest.raises(KeyboardInterrupt):
        work(trials)
    assert _states(trials) == ["FAIL", "WAITING"]  # put back, to be scored on the rerun
