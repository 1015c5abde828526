"""Stop requests by signal: finish the step, write a checkpoint, exit with 128 + the signal number.

SIGTERM is what `docker stop`, Kubernetes, preemptible clouds and schedulers send before killing a
job, SIGUSR1 what SLURM sends ahead of a time limit (`--signal=USR1@60`), SIGINT a Ctrl-C. A
handler only records the request; the trainer acts on it at the next step boundary (in a job of
several processes, at the same boundary in every process, see `distributed.StopVote`). A second
SIGINT raises KeyboardInterrupt at once, for a user who does not want to wait for the checkpoint.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from srunit.errors import TrainingStopped, signal_name

__all__ = ["STOP_SIGNALS", "StopSignals", "TrainingStopped", "received_since", "signal_name", "stop_requests"]
# (TrainingStopped and signal_name are srunit.errors')

# SIGUSR1 does not exist on Windows.
STOP_SIGNALS: tuple[int, ...] = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGUSR1", "SIGINT")
                                      if hasattr(signal, name))

_received: list[int] = []  # every stop signal a StopSignals received in this process, in order, acted on or not


def stop_requests() -> int:
    """How many stop signals `StopSignals` has received in this process so far. Training at its last step when one
    comes finishes the run without acting on it (and puts the previous handler back): a caller that goes on after
    (a tuning worker, which would start another trial) takes the count before training and asks `received_since`."""
    return len(_received)


def received_since(count: int) -> int:
    """The first stop signal `StopSignals` received after `stop_requests` returned ``count``; 0 for none."""
    return _received[count] if len(_received) > count else 0


class StopSignals:
    """Between `install` and `restore` (in the main thread), SIGTERM, SIGUSR1 and SIGINT set
    `requested` instead of ending the process; `restore` puts the previous handlers back. Outside
    the main thread (where Python cannot set handlers) it does nothing. Also a context manager."""

    def __init__(self) -> None:
        self.requested = 0  # the first stop signal received, 0 for none
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        _received.append(signum)
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not self.requested:
            self.requested = signum

    def install(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def __enter__(self) -> StopSignals:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.restore()
