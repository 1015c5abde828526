"""Round fifteen (A), a confirmation probe of issue 24's classes aimed at distributed jobs (torchrun and processes
started by hand), concurrent commands on one run and tuning studies. Each test reproduced a defect first."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
import torch

from srunit.engine import Schedule
from srunit.errors import ConfigError
from srunit.options import TrainConfig

# Tiny networks and 32 px crops, no loader workers, a log line and a checkpoint every step.
TINY = ["--model.ngf", "4", "--model.ndf", "4", "--model.n_blocks", "1", "--model.projector_dim", "8",
        "--data.load_size", "36", "--data.crop_size", "32", "--data.num_workers", "0", "--train.device", "cpu",
        "--train.log_every", "1", "--train.checkpoint_every", "1", "--no-progress"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _job_env(rank: int, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT", "TORCHELASTIC_USE_AGENT_STORE")}
    return {**env, "OMP_NUM_THREADS": "1", "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), **extra}


@pytest.mark.e2e
def test_a_job_whose_peer_is_killed_ends_with_one_line_and_the_way_back(tiny_data: Path, tmp_path: Path) -> None:
    """SIGKILL of rank 1 of a two-process job: rank 0 failed in its next all-reduce with a 30-line traceback ending in
    gloo's `RuntimeError: ... Connection closed by peer ... GLHF!`. It now ends (status 2) with one line that says the
    job was lost and how to continue the run from its last checkpoint."""
    port = _free_port()
    cmd = [sys.executable, "-m", "srunit", "train", "--preset", "cut", "--data.root", str(tiny_data),
           "--train.runs_dir", str(tmp_path), "--train.name", "job", "--train.steps", "100000", *TINY]
    logs = [tmp_path / f"rank{r}.err" for r in (0, 1)]
    procs = [subprocess.Popen(cmd, env=_job_env(r, port), stdout=subprocess.DEVNULL, stderr=logs[r].open("w"))
             for r in (0, 1)]
    try:
        deadline = time.monotonic() + 240
        while "step 2/" not in logs[0].read_text() and time.monotonic() < deadline:
            assert procs[0].poll() is None, logs[0].read_text()
            time.sleep(0.2)
        assert "step 2/" in logs[0].read_text(), "the job did not train two steps in time"
        procs[1].send_signal(signal.SIGKILL)
        code = procs[0].wait(timeout=120)  # bounded: the next collective fails at once
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    err = logs[0].read_text()
    assert code == 2, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1, err[-3000:]
    run = tmp_path / "job"
    assert re.search(r"srunit train: error: rank 0 of 2 lost the job: another process ended or its connection broke "
                     r"\(.+\); this process stops too\. .+ keeps its last complete checkpoint: continue with the same "
                     r"torchrun command and `-m srunit train --resume " + re.escape(str(run)) + "`", lines[0]), lines[0]
    assert (run / "checkpoints" / "latest").exists()


@pytest.mark.e2e
def test_a_master_port_that_accepts_and_never_answers_ends_the_job_after_its_timeout(tmp_path: Path) -> None:
    """Rank 1 of a job started by hand, with MASTER_PORT on a server that accepts connections and never answers
    (another program's port): torch's store client waited for its answer for ever, whatever
    SRUNIT_RENDEZVOUS_TIMEOUT said. It now ends soon after that timeout with the job-did-not-start message."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    held: list[socket.socket] = []

    def accept() -> None:
        try:
            while True:
                held.append(server.accept()[0])
        except OSError:  # closed at the end of the test
            return

    threading.Thread(target=accept, daemon=True).start()
    (tmp_path / "d" / "trainA").mkdir(parents=True)  # never read: the job stops before its data
    start = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "srunit", "train", "--preset", "cut", "--data.root",
                               str(tmp_path / "d"), "--train.runs_dir", str(tmp_path / "runs"), *TINY],
                              env=_job_env(1, port, SRUNIT_RENDEZVOUS_TIMEOUT="2"), capture_output=True, text=True,
                              timeout=120)
    finally:
        server.close()
        for conn in held:
            conn.close()
    assert time.monotonic() - start < 100
    assert done.returncode == 2, done.stderr[-3000:]
    assert (f"the job did not start: rank 1 waited for rank 0 at 127.0.0.1:{port} for 2 s (the server at that port "
            f"accepted the connection and never answered; is it another program's port?)") in done.stderr
    assert "SRUNIT_RENDEZVOUS_TIMEOUT=SECONDS" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_advice_for_a_job_larger_than_its_dataset_can_be_followed() -> None:
    """Two processes on one image: `lower train.batch_size`, though it was 1 already. The advice now names what
    works (fewer processes, or a batch size that fits), and following it is accepted."""
    with pytest.raises(ConfigError) as one:
        Schedule.from_config(TrainConfig(batch_size=1, steps=2), dataset_len=1, world_size=2)
    assert str(one.value) == ("train.batch_size 1 x 2 processes = 2 is larger than the dataset (1 images); start at "
                              "most 1 process (torchrun --nproc-per-node), or add images")
    assert Schedule.from_config(TrainConfig(batch_size=1, steps=2), dataset_len=1, world_size=1).steps_per_epoch == 1
    with pytest.raises(ConfigError) as two:
        Schedule.from_config(TrainConfig(batch_size=2, steps=2), dataset_len=3, world_size=2)
    assert str(two.value).endswith("(3 images); lower train.batch_size to 1 or less, or start fewer processes "
                                   "(torchrun --nproc-per-node)")
    assert Schedule.from_config(TrainConfig(batch_size=1, steps=2), dataset_len=3, world_size=2).steps_per_epoch == 1
    with pytest.raises(ConfigError, match=r"\(5 images\); lower train.batch_size to 5 or less$"):
        Schedule.from_config(TrainConfig(batch_size=8, steps=2), dataset_len=5)


@pytest.mark.parametrize("value", ["0", "0.0", "-3"])
def test_a_rendezvous_timeout_of_zero_is_refused_with_the_range_it_takes(value: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """SRUNIT_RENDEZVOUS_TIMEOUT=0 in a job of two was refused as `must be a number of seconds from 0 to 86400`: the
    range the message gave held the refused value."""
    from srunit.engine.distributed import setup

    monkeypatch.delenv("TORCHELASTIC_USE_AGENT_STORE", raising=False)
    for name, val in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                      "MASTER_PORT": str(_free_port()), "SRUNIT_RENDEZVOUS_TIMEOUT": value}.items():
        monkeypatch.setenv(name, val)
    with pytest.raises(ConfigError, match=re.escape(f"SRUNIT_RENDEZVOUS_TIMEOUT='{value}' must be a number of "
                                                    f"seconds above 0 and at most 86400")):
        setup(torch.device("cpu"))


def test_two_evaluations_of_one_run_at_once_the_second_is_refused(tiny_runs: dict[str, Path], tiny_data: Path,
                                                                  tmp_path: Path) -> None:
    """Two `eval paired --run RUN --replace-record` at once (two shells): each replaced RUN/eval/translated while
    the other did, so the record could end with the scores of one and the translations of the other, and the later
    rename failed as `Directory not empty; check the path, its permissions and the free space`, leaving its hidden
    folder in RUN/eval. An evaluation now holds a lock on RUN/eval; the second is refused naming the first, and
    the record is untouched."""
    import shutil

    from srunit._outputs import OutputLock
    from srunit.eval.run_records import evaluate_run_paired

    run = tmp_path / "run"
    shutil.copytree(tiny_runs["cut"], run, symlinks=True)
    evaluate_run_paired(run, tiny_data / "testB", tiny_data / "testA", (30, 50))
    before = {p.relative_to(run): p.read_bytes() for p in sorted((run / "eval").rglob("*")) if p.is_file()}
    with OutputLock(run / "eval", "another evaluation"):  # the first command, still scoring
        with pytest.raises(ConfigError, match=rf"--run: the evaluation record {re.escape(str(run / 'eval'))} is "
                                              rf"being written by pid {os.getpid()} on .*; wait for that command to "
                                              rf"end"):
            evaluate_run_paired(run, tiny_data / "testA", tiny_data / "testA", (30, 50), replace=True)
    after = {p.relative_to(run): p.read_bytes() for p in sorted((run / "eval").rglob("*")) if p.is_file()}
    assert after == before
    evaluate_run_paired(run, tiny_data / "testA", tiny_data / "testA", (30, 50), replace=True)  # once it has ended
    assert not (run / ".eval.lock").exists()


def test_a_tuning_trial_stopped_by_a_signal_is_logged_without_optunas_traceback(tmp_path: Path) -> None:
    """Ctrl-C (or SIGTERM) of `srunit tune` during a trial: the trial's checkpoint is complete and it is queued again,
    as docs/tuning.md says, but Optuna logged the trial's failure with a 20-line traceback of `TrainingStopped` before
    srunit's own line `srunit tune: stopped by SIGINT ... rerun the same command`. The line stays, the traceback
    goes to the debug log."""
    import logging

    from srunit.errors import TrainingStopped
    from srunit.tune.study import _OwnErrorsInOneLine

    try:
        raise TrainingStopped(signal.SIGINT, 21, tmp_path / "checkpoints" / "step_00000021", tmp_path)
    except TrainingStopped:
        record = logging.LogRecord("optuna.study._optimize", logging.WARNING, __file__, 1, "Trial 0 failed", None,
                                   sys.exc_info())
    assert _OwnErrorsInOneLine().filter(record)
    formatted = logging.Formatter().format(record)
    assert formatted == "Trial 0 failed" and "Traceback" not in formatted


@pytest.mark.slow  # forks a worker and kills it; tests/tune's two-worker budget test runs in the fast tier
def test_a_study_continued_while_a_killed_workers_trial_holds_its_place_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """`tune --trials 2`, SIGKILL in trial 0, the same command at once: trial 0 stays marked running (its heartbeat is
    not yet 3 minutes old), trial 1 finishes, trial 2 is pruned as over the budget, and the command ended with status
    0 and 1 of 2 trials finished without a word. It now warns which trial holds a place and when to run again."""
    import logging

    from srunit.tune.study import Trials, TuneSettings, _prepare_out, open_study, run_tune
    from srunit.tune.targets import FolderTarget

    for folder in ("data", "val", "labels"):
        (tmp_path / folder).mkdir()
    target = FolderTarget(str(tmp_path / "data"), str(tmp_path / "val"), str(tmp_path / "labels"), "seg.onnx", 3)
    settings = TuneSettings(preset="cut", target=target.to_dict(), study_name="s", trials=2, sampler="random",
                            space={"method.lambda_nce": {"low": 0.25, "high": 4.0, "log": True}})
    monkeypatch.setattr(Trials, "run", lambda self, params, seed, on_stop=None: (0.5, {"runs": ["x"]}))
    monkeypatch.setattr(FolderTarget, "prepare", lambda self, out: None)
    monkeypatch.setattr(FolderTarget, "check", lambda self: None)
    out = tmp_path / "out"
    _prepare_out(out, settings)  # the tuning folder of the first command
    study = open_study(f"sqlite:///{(out / 'study.db').resolve()}", settings)
    with warnings.catch_warnings():  # Optuna warns that heartbeats belong to optimize(): here the test plays a worker
        warnings.simplefilter("ignore", UserWarning)
        study.ask()  # trial 0: what a worker killed outright leaves, RUNNING with a fresh heartbeat
    with caplog.at_level(logging.WARNING, logger="srunit.tune.study"):
        summary = run_tune(out, settings)
    assert [t["state"] for t in summary["trials"]] == ["RUNNING", "COMPLETE", "PRUNED"]
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert ("study s: 1 of 2 trials finished; trial 0 is still marked running (by another worker, or by one that "
            "was killed: its trial is queued again once it has been silent for 180 s); run the same command again "
            "then to finish the study") in said


def test_a_search_space_in_exponent_notation_is_read_as_numbers() -> None:
    """`method.lambda_nce: {low: 1e-5, high: 1e-3, log: true}` (the paper's range of beta, as one writes it) was
    refused: `low must be a finite number, got '1e-5'`, for YAML reads an exponent without a dot and a sign as text,
    while a config file (`train: {lr: 1e-4}`) and a space's choices took it as a number."""
    import yaml

    from srunit._yaml import load_yaml
    from srunit.search import space_from_dict

    text = ("method.lambda_nce: {low: 1e-5, high: 1e-3, log: true}\n"
            "method.num_patches: {low: 1e1, high: 2E2, int: true}\n")
    assert yaml.safe_load(text)["method.lambda_nce"]["low"] == "1e-5"  # what YAML itself gives
    params = {p.key: p for p in space_from_dict(load_yaml(text, "space.yaml"), "space.yaml")}
    lam, patches = params["method.lambda_nce"], params["method.num_patches"]
    assert (lam.low, lam.high, lam.log) == (1e-5, 1e-3, True)
    assert isinstance(lam.low, float) and (patches.low, patches.high, patches.integer) == (10.0, 200.0, True)
    for bad, says in (("abc", "'abc'"), (".nan", "nan"), ("nan", "nan"), ("1e400", "inf")):
        with pytest.raises(ConfigError, match=f"low must be a finite number, got {says}"):
            space_from_dict(load_yaml(f"method.lambda_nce: {{low: {bad}, high: 1}}\n", "space.yaml"), "space.yaml")


@pytest.mark.parametrize("damage", ["truncated", "text", "folder"])
def test_a_damaged_study_storage_is_named_with_a_way_out_that_works(tmp_path: Path, damage: str) -> None:
    """A tuning folder whose `study.db` is truncated, overwritten or a folder: `--storage sqlite:///OUT/study.db:
    cannot open it as an Optuna storage (...); give a database URL such as sqlite:///study.db`, an option the user
    never gave and a URL that was right. The message now says the file is damaged and to move it away; done as
    said, the study opens again."""
    from srunit.tune.study import TuneSettings, open_study
    from srunit.tune.targets import FolderTarget

    for folder in ("d", "v", "l"):
        (tmp_path / folder).mkdir()
    target = FolderTarget(str(tmp_path / "d"), str(tmp_path / "v"), str(tmp_path / "l"), "seg.onnx", 3)
    settings = TuneSettings(preset="cut", target=target.to_dict(), study_name="s", trials=2, sampler="random",
                            space={"method.lambda_nce": {"low": 0.25, "high": 4.0, "log": True}})
    db = tmp_path / "study.db"
    storage = f"sqlite:///{db}"
    with warnings.catch_warnings():  # Optuna's heartbeat-outside-optimize warning: the test plays a worker
        warnings.simplefilter("ignore", UserWarning)
        open_study(storage, settings).ask()
    if damage == "truncated":
        db.write_bytes(db.read_bytes()[:3000])
    elif damage == "text":
        db.write_text("not a database\n")
    else:
        db.unlink()
        db.mkdir()
    with pytest.raises(ConfigError) as err:
        open_study(storage, settings)
    message = str(err.value)
    assert message.startswith(f"the study's storage {db} cannot be read as an SQLite database (")
    assert f"move it away (mv {db} {db}.damaged) and run the same command again" in message
    db.rename(tmp_path / "study.db.damaged")
    assert open_study(storage, settings).study_name == "s"  # the way out works
    with pytest.raises(ConfigError, match=r"--storage sqlite:///.*/no/such/x.db: cannot open it as an Optuna storage"):
        open_study(f"sqlite:///{tmp_path}/no/such/x.db", settings)  # a wrong URL keeps its own advice
