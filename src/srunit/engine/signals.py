"""Stop requests by signal: finish the step, write a checkpoint, exit with 128 + the signal number.

SIGTERM is what `docker stop`, Kubernetes, preemptible clouds and schedulers send before killing a
job, SIGUSR1 what SLURM sends ahead of a time limit (`--signal=USR1@60`), SIGINT a Ctrl-C. A
handler only records the request; the trainer acts on it at the next step boundary (in a job of
several processes, at the same boundary in every process, see `distributed.StopVote`). A second
SIGINT raises KeyboardInterrupt at once, for a user who does not want to wait for the checkpoint.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["STOP_SIGNALS", "StopSignals", "TrainingStopped"]

# SIGUSR1 does not exist on Windows.
STOP_SIGNALS: tuple[int, ...] = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGUSR1", "SIGINT")
                                      if hasattr(signal, name))


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


# Commands that train runs of a study (a benchmark, a tuning study): the same command continues them.
STUDY_COMMANDS = frozenset({"bench", "tune"})


class TrainingStopped(Exception):
    """Training stopped on a signal after ``step``; ``checkpoint`` holds that step.

    ``exit_code`` is 128 + the signal number (143 for SIGTERM, 138 for SIGUSR1, 130 for SIGINT), the
    code a shell reports for a process ended by that signal, so schedulers read it as such.
    """

    def __init__(self, signum: int, step: int, checkpoint: Path, run_dir: Path) -> None:
        self.signal, self.step, self.checkpoint, self.run_dir = signum, step, checkpoint, run_dir
        self.exit_code = 128 + signum
        super().__init__(f"stopped by {signal_name(signum)} after step {step}; checkpoint {checkpoint} is "
                         f"complete; continue with `srunit train --resume {run_dir}`")

    def report(self, command: str) -> str:
        """The line `srunit COMMAND` prints for this stop: ``srunit train (rank R): stopped by ...``, with the rank
        in a job of several processes."""
        rank = f" (rank {os.environ['RANK']})" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""
        if command in STUDY_COMMANDS and getattr(self, "step", None) is not None:  # a run of a study stopped
            return (f"srunit {command}{rank}: stopped by {signal_name(self.signal)} after step {self.step} of "
                    f"{self.run_dir}; its checkpoint is complete; rerun the same command (with the same --out) to "
                    f"continue")
        return f"srunit {command}{rank}: {self}"


class StopSignals:
    """Between `install` and `restore` (in the main thread), SIGTERM, SIGUSR1 and SIGINT set
    `requested` instead of ending the process; `restore` puts the previous handlers back. Outside
    the main thread (where Python cannot set handlers) it does nothing. Also a context manager."""

    def __init__(self) -> None:
        self.requested = 0  # the first stop signal received, 0 for none
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
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
