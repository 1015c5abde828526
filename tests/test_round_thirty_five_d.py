"""Round thirty-five (D): a stop signal as a job starts waits until the job can leave with its line."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest


def _report_sigint(out: str) -> None:
    """A process's target: writes whether SIGINT is blocked and pending in it as it begins."""
    blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    Path(out).write_text(f"{blocked} {signal.SIGINT in signal.sigpending()}")


def _trains_a_while(out: str) -> None:
    Path(out).touch()
    time.sleep(30)  # a SIGINT ends it (KeyboardInterrupt: `[early] interrupted`, status 130)


@pytest.mark.slow  # 3 s each: a job's process imports torch; the fast relative is the one below
@pytest.mark.parametrize("reached", ["the job and its caller", "the caller"])
def test_a_sigint_while_a_job_starts_ends_it_with_its_line_not_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
        request: pytest.FixtureRequest, reached: str) -> None:
    """`tune synthscapes --jobs 2`, Ctrl-C just as a worker starts: the worker, still in the terminal's process
    group and importing srunit, printed Python's traceback from multiprocessing's spawn; so did a stop its caller
    passed on to a job that had just started (round thirty-five (D), class c). The stop is still not dropped: the
    job leaves at once, with its line, where one that missed it would train on."""
    from srunit.synthscapes import parallel

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal gives it
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    start = parallel._start

    def start_then_interrupted(process: Any) -> None:
        start(process)
        time.sleep(0.15)  # the job is importing what it runs
        if reached == "the job and its caller":  # a Ctrl-C at the terminal, before the job leaves its group
            os.kill(process.pid, signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)  # the caller passes it on at once (it has a job to stop)

    monkeypatch.setattr(parallel, "_start", start_then_interrupted)
    began = time.monotonic()
    with pytest.raises(parallel.JobsStopped, match=r"stopped by SIGINT; 1 running job\(s\) stopped \(early\), each at"):
        parallel.run_jobs([parallel.Job("early", _trains_a_while, (str(tmp_path / "began"),))], 1)
    assert time.monotonic() - began < 25  # it did not train on
    assert not (tmp_path / "began").exists()  # stopped before its work began
    err = capfd.readouterr().err
    assert "[early] interrupted\n" in err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="no signal masks (Windows)")
def test_a_job_starts_with_sigint_blocked_and_one_sent_meanwhile_waits(tmp_path: Path,
                                                                         request: pytest.FixtureRequest) -> None:
    """The fast relative of the test above: `_start` hands a job SIGINT blocked through spawn's exec (the job
    unblocks it once it can leave with its line), so a SIGINT sent as it starts waits, where an ignored one would be
    dropped; the caller's own mask is as it was."""
    import multiprocessing

    from srunit.synthscapes import parallel

    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    out = tmp_path / "mask"
    process = multiprocessing.get_context("spawn").Process(target=_report_sigint, args=(str(out),))
    parallel._start(process)
    request.addfinalizer(lambda: process.kill() if process.exitcode is None else None)
    os.kill(process.pid, signal.SIGINT)
    process.join(60)
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
    assert process.exitcode == 0 and out.read_text() == "True True"  # blocked, and the SIGINT waits
