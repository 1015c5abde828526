"""srunit.synthscapes.parallel: benchmark runs trained several at a time, in processes of their own."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from srunit.engine.signals import StopSignals, TrainingStopped
from srunit.errors import SrunitError
from srunit.synthscapes import run_benchmark
from srunit.synthscapes.parallel import Job, JobsStopped, run_jobs, threads_per_job


# Job targets run in spawned processes: module-level functions of this file.
def _record(out: str, seconds: float) -> None:
    start = time.time()
    time.sleep(seconds)
    Path(out).write_text(json.dumps({"pid": os.getpid(), "threads": torch.get_num_threads(), "start": start,
                                     "end": time.time(), "pgid": os.getpgrp()}))


def _fail(out: str) -> None:
    raise SrunitError(f"no data in {out}")


def _train_until_stopped(out: str) -> None:
    """Like a trainer: steps until a stop signal, then 'checkpoints' and raises TrainingStopped."""
    with StopSignals() as signals:
        Path(out + ".started").touch()
        step = 0
        while not signals.requested:
            step += 1
            time.sleep(0.05)
        Path(out).write_text(str(step))
        raise TrainingStopped(signals.requested, step, Path(out), Path(out).parent)


def test_jobs_run_n_at_a_time_each_with_a_share_of_the_threads(tmp_path: Path) -> None:
    files = [tmp_path / f"job{i}.json" for i in range(3)]
    minutes = run_jobs([Job(f"j{i}", _record, (str(f), 1.5)) for i, f in enumerate(files)], 2)
    assert sorted(minutes) == ["j0", "j1", "j2"]
    runs = [json.loads(f.read_text()) for f in files]
    assert {r["threads"] for r in runs} == {threads_per_job(2)}
    assert len({r["pid"] for r in runs} | {os.getpid()}) == 4  # a process of its own each
    assert all(r["pgid"] == r["pid"] for r in runs)  # and its own process group
    overlaps = [sum(a["start"] < b["end"] and b["start"] < a["end"] for b in runs if b is not a) for a in runs]
    assert max(overlaps) >= 1  # two ran at the same time
    assert not any(r["start"] < runs[0]["end"] and r["start"] < runs[1]["end"] for r in runs[2:])  # never three
    assert threads_per_job(2, 2) == 1 and threads_per_job(4, 2) == 1 and threads_per_job(2, 16) == 8


def test_a_failed_job_stops_new_ones_and_is_named(tmp_path: Path) -> None:
    with pytest.raises(SrunitError, match=r"1 job\(s\) failed: bad \(exit code 2\); the cause is in the log above"):
        run_jobs([Job("bad", _fail, (str(tmp_path / "x"),)), Job("later", _record, (str(tmp_path / "later"), 0))], 1)
    assert not (tmp_path / "later").exists()


def test_a_stop_signal_reaches_every_job_once_and_each_checkpoints(tmp_path: Path,
                                                                   capfd: pytest.CaptureFixture[str]) -> None:
    outs = [str(tmp_path / f"run{i}") for i in range(2)]

    def stop_when_started() -> None:
        deadline = time.time() + 120
        while not all(Path(o + ".started").exists() for o in outs) and time.time() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_when_started, daemon=True).start()
    with pytest.raises(JobsStopped) as stopped:
        run_jobs([Job(f"r{i}", _train_until_stopped, (o,)) for i, o in enumerate(outs)]
                 + [Job("never", _record, (str(tmp_path / "never"), 0))], 2)
    assert stopped.value.exit_code == 143 and isinstance(stopped.value, TrainingStopped)
    assert str(stopped.value) == ("stopped by SIGTERM; 2 running job(s) stopped (r0, r1), each at its last checkpoint; "
                                  "rerun the same command to continue")
    assert all(int(Path(o).read_text()) >= 1 for o in outs)  # each finished its step and 'checkpointed'
    err = capfd.readouterr().err
    for i, o in enumerate(outs):  # each job's line says where it stopped; how to continue is the caller's to say
        assert f"[r{i}] stopped by SIGTERM after step {Path(o).read_text()}; checkpoint {o} is complete\n" in err
    assert "--resume" not in err  # `srunit train --resume RUN` is not how a benchmark or a study continues
    assert not (tmp_path / "never").exists()


def test_the_benchmark_trains_its_runs_in_parallel_and_scores_them(tmp_path: Path, tiny_settings) -> None:
    settings = tiny_settings(methods=("cut",), conditions=("unmatched",), seeds=2, first_seed=7)
    summary = run_benchmark(tmp_path / "bench", settings, cache_dir=tmp_path / "cache", show_progress=False, jobs=2)
    assert sorted(summary["train_minutes_this_call"]) == ["unmatched/cut-seed7", "unmatched/cut-seed8"]
    [row, _] = summary["rows"]
    assert row["method"] == "cut" and row["n"] == 2
    for seed in (7, 8):
        run = tmp_path / "bench" / "unmatched" / f"cut-seed{seed}"
        assert json.loads((run / "eval" / "scores.json").read_text())["seed"] == seed
        assert (run / "checkpoints" / "latest").resolve().name == "step_00000002"
    with pytest.raises(SrunitError, match="--jobs"):
        run_benchmark(tmp_path / "bench", settings, cache_dir=tmp_path / "cache", show_progress=False, jobs=0)


_ORPHAN_JOBS = '''
import os, sys, time
from pathlib import Path
from srunit.engine.signals import StopSignals, TrainingStopped
from srunit.synthscapes.parallel import Job, run_jobs

def train(out):
    with StopSignals() as signals:
        Path(out + ".pid").write_text(str(os.getpid()))
        while not signals.requested:
            time.sleep(0.05)
        Path(out).write_text("checkpointed")
        raise TrainingStopped(signals.requested, 1, Path(out), Path(out).parent)

if __name__ == "__main__":
    run_jobs([Job(f"j{i}", train, (os.path.join(sys.argv[1], f"job{i}"),)) for i in range(2)], 2)
'''


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status  # a zombie has exited; only its parent's reaping is left


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="parent-death signals are a Linux feature")
def test_jobs_checkpoint_and_exit_when_the_parent_is_killed(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "orphan_jobs.py").write_text(_ORPHAN_JOBS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    parent = subprocess.Popen([sys.executable, str(tmp_path / "orphan_jobs.py"), str(tmp_path)], env=env)
    try:
        pid_files = [tmp_path / f"job{i}.pid" for i in range(2)]
        deadline = time.time() + 60
        while not all(p.exists() and p.read_text() for p in pid_files) and time.time() < deadline:
            time.sleep(0.05)
        pids = [int(p.read_text()) for p in pid_files]
        parent.kill()  # SIGKILL: the parent runs no handler, no finally
        parent.wait()
        deadline = time.time() + 10
        while any(_alive(pid) for pid in pids) and time.time() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in pids if _alive(pid)], "jobs outlived their parent"
        assert all((tmp_path / f"job{i}").read_text() == "checkpointed" for i in range(2))
    finally:
        parent.kill()
        for pid in [int(p.read_text()) for p in tmp_path.glob("job*.pid") if p.read_text()]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
