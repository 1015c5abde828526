"""Round thirty-five (D): a stop signal as a job starts waits until the job can leave with its line."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest


def _trains_a_while(out: str) -> None:
    Path(out).touch()
    time.sleep(30)  # a SIGINT ends it (KeyboardInterrupt: `[early] interrupted`, status 130)


@pytest.mark.parametrize("reached", [pytest.param("the job and its caller", marks=pytest.mark.slow),  # 3 s: a spawn
                                     "the caller"])
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
