"""Training several benchmark runs at once, each in its own process.

A benchmark is many independent runs. On a machine with more cores than one small run keeps busy,
or with several GPUs, ``srunit bench synthscapes --jobs N`` trains N of them at a time: each job is
a fresh (spawned) process with an equal share of this process's CPU threads and, where the
benchmark trains on CUDA with several GPUs visible, GPU ``slot % count`` of its own. Jobs run in
their own process group, so a Ctrl-C at the terminal reaches this process only, which passes the
stop signal on to every job exactly once: each checkpoints its current step and leaves, and
rerunning the benchmark continues from there. On Linux a job also gets SIGTERM when this process dies, however
it dies (SIGKILL included), so no job trains on as an orphan. Scoring stays in the calling process.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from srunit.checks import OneLineFormatter
from srunit.engine.signals import StopSignals, TrainingStopped, signal_name
from srunit.errors import FolderMoved, SrunitError

__all__ = ["Job", "JobsStopped", "run_jobs", "threads_per_job"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h

# How often the calling process looks for finished jobs and received signals (seconds).
_POLL_S = 0.5


@dataclass(frozen=True)
class Job:
    """One unit of work: ``target(*args)`` in a process of its own; ``name`` labels its log lines."""

    name: str
    target: Callable[..., Any]
    args: tuple[Any, ...]


class JobsStopped(TrainingStopped):
    """A stop signal ended the jobs; every running job in training checkpointed its step first. ``exit_code`` is
    128 + signal (the command line reports it as it reports a stopped training)."""

    def __init__(self, signum: int, stopped: Sequence[str]) -> None:
        self.signal, self.exit_code = signum, 128 + signum
        self.step = self.checkpoint = self.run_dir = None  # type: ignore[assignment]  # no single run
        Exception.__init__(self, f"stopped by {signal_name(signum)}; {len(stopped)} running job(s) stopped "
                         f"({', '.join(stopped) or 'none'}), each at its last checkpoint; rerun the same command to "
                         "continue")


def threads_per_job(jobs: int, threads: int | None = None) -> int:
    """An equal share of ``threads`` (default: this process's intra-op threads) for each of ``jobs``."""
    return max(1, (threads or torch.get_num_threads()) // jobs)


def _signal_all(running: dict[str, tuple[Any, float, int]], signum: int) -> None:
    for process, _, _ in running.values():
        if process.pid is not None and process.exitcode is None:
            os.kill(process.pid, signum)


def _stop_with_parent(parent: int) -> None:
    """Ask Linux to send this process SIGTERM when its parent dies, however it dies (SIGKILL included): the job then
    checkpoints and stops instead of training on as an orphan. Elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the caller's own signal handling is all there is
        return
    if os.getppid() != parent:  # the parent died before the request took effect: no signal will come
        os.kill(os.getpid(), signal.SIGTERM)


def _job_main(job: Job, threads: int, gpu: int | None, level: int, parent: int | None = None) -> None:
    """A job process: its own process group, its share of threads (and GPU), its log prefix, then the work."""
    if hasattr(os, "setpgrp"):
        os.setpgrp()  # a terminal's Ctrl-C goes to the caller, which passes it on once
    if parent is not None:
        _stop_with_parent(parent)
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter(f"[{job.name}] %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    torch.set_num_threads(threads)
    if gpu is not None:
        torch.cuda.set_device(gpu)
    try:
        if hasattr(signal, "pthread_sigmask"):  # one that came while this process started is raised here, and caught
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        job.target(*job.args)
        if hasattr(signal, "SIGINT"):  # its work done, a stop passed on now finds nothing to stop (it ended the job
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # as it exited, silently, and the job was named as stopped)
    except TrainingStopped as stopped:
        _leave(f"[{job.name}] {stopped.where()}", stopped.exit_code)  # the caller says how to continue
    except KeyboardInterrupt:  # the caller passed a Ctrl-C on where no training catches it (a run being scored)
        _leave(f"[{job.name}] interrupted", 128 + signal.SIGINT)
    except FolderMoved:  # the caller holds the same folder open and names both places once (see run_jobs)
        sys.exit(2)
    except SrunitError as err:
        _leave(f"[{job.name}] error: {err}", 2)


def _start(process: Any) -> None:
    """Start a job's ``process`` with SIGINT blocked, which it keeps through spawn's exec until `_job_main` unblocks
    it: a Ctrl-C while the job imports (it is in the terminal's process group until `_job_main` leaves it) or a
    stop passed on to it then waits until the job can leave with its one line, where Python's handler raised it in
    the middle of spawn's imports, with a traceback. A SIGINT to this process meanwhile waits too (a few
    milliseconds), and neither is dropped, as SIGINT ignored through the exec would be."""
    if not hasattr(signal, "pthread_sigmask"):
        process.start()
        return
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()  # its first start unblocks SIGINT in this process: started first, it cannot
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _leave(line: str, code: int) -> None:
    """End a job with its one line, written at once (print's two writes let another job's line in before the
    newline) and with SIGINT ignored from here on: a second one (a `pkill -INT` reaches a job and its caller, which
    passes it on) raised KeyboardInterrupt in torch's exit handlers, with a traceback."""
    if hasattr(signal, "SIGINT"):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stderr.write(f"{line}\n")
    sys.stderr.flush()
    sys.exit(code)


def run_jobs(jobs: Sequence[Job], workers: int, *, cuda: bool = False) -> dict[str, float]:
    """Run ``jobs`` in order, at most ``workers`` at a time; returns minutes per finished job.

    Each job gets `threads_per_job` threads and, with ``cuda`` and several visible GPUs, one GPU by
    its slot. Once a job fails no new one starts; the running ones finish, then the failure is raised.
    A job that finds its output folder moved (`FolderMoved`) leaves without a word: the caller, which
    opened that folder too (`srunit._atomic.FolderWriter`), checks it when the jobs have ended and says so once.

    Raises:
        JobsStopped: SIGTERM, SIGINT or SIGUSR1 reached this process (passed on to every running job,
            which checkpoints and stops); not where it came as the last jobs finished.
        SrunitError: a job failed; its own error is in the log above, prefixed with its name.
    """
    context = multiprocessing.get_context("spawn")
    threads = threads_per_job(workers)
    gpus = torch.cuda.device_count() if cuda else 0
    level = logging.getLogger("srunit").getEffectiveLevel()
    waiting = list(jobs)
    running: dict[str, tuple[Any, float, int]] = {}  # name -> (process, start, slot)
    free = list(range(workers))
    minutes: dict[str, float] = {}
    failed: list[str] = []
    stopped_by = 0
    stopping: list[str] = []
    try:
        with StopSignals() as signals:
            while waiting or running:
                while waiting and free and not failed and not signals.requested:
                    job, slot = waiting.pop(0), free.pop(0)
                    process = context.Process(target=_job_main, name=job.name,
                                              args=(job, threads, slot % gpus if gpus > 1 else None, level,
                                                    os.getpid()))
                    _start(process)
                    running[job.name] = (process, time.perf_counter(), slot)
                    log.info("job %s started (%d thread%s)", job.name, threads, "" if threads == 1 else "s")
                if signals.requested and not stopped_by:
                    stopped_by, stopping = signals.requested, list(running)
                    _signal_all(running, stopped_by)
                if not running:
                    break
                multiprocessing.connection.wait([p.sentinel for p, _, _ in running.values()], timeout=_POLL_S)
                for name, (process, start, slot) in list(running.items()):
                    if process.exitcode is None:
                        continue
                    process.join()
                    del running[name]
                    free.append(slot)
                    if process.exitcode == 0:
                        minutes[name] = (time.perf_counter() - start) / 60
                        log.info("job %s finished in %.1f min", name, minutes[name])
                    elif not stopped_by:
                        failed.append(f"{name} (exit code {process.exitcode})")
    except KeyboardInterrupt:  # a second Ctrl-C: the jobs get theirs too and stop without a checkpoint
        _signal_all(running, signal.SIGINT)
        raise
    finally:  # whatever ended this loop, no job outlives it: SIGTERM checkpoints and stops the rest
        _signal_all(running, signal.SIGTERM)
        for process, _, _ in running.values():
            process.join()
    stopped = [name for name in stopping if name not in minutes]  # not those that finished just then
    if stopped_by and (stopped or waiting):  # else the stop came as the last jobs finished: the work is done
        raise JobsStopped(stopped_by, stopped)
    if failed:
        raise SrunitError(f"{len(failed)} job(s) failed: {', '.join(failed)}; the cause is in the log above, "
                          "prefixed with the job's name; fix it and rerun the same command to continue")
    return minutes

