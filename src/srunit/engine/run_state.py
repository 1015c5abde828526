"""The files of a run folder that keep it consistent while it is trained: the lock, the history of
starts and resumes, and metrics trimmed back to the checkpoint a run continues from.

RUN/train.lock     held (flock) by the one process that trains the run; names it (pid, host, start)
RUN/history.jsonl  one line per start and resume: time, step, overrides and what they changed
(names and layout: `srunit.runtime.run_folder`)
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from srunit._atomic import descriptor_path, replace_with_own_copy, write_text_atomic
from srunit._outputs import describe_holder, local_now, open_lock_file, record_holder
from srunit._reading import json_lines
from srunit.errors import ConfigError
from srunit.runtime.run_folder import RunFolder

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not locked
    fcntl = None  # type: ignore[assignment]

__all__ = ["RunLock", "append_history", "check_logs", "trim_metrics"]

log = logging.getLogger(__name__)


def _now() -> str:
    return local_now().isoformat(timespec="seconds")


class RunLock:
    """An exclusive lock on a run folder for as long as one process trains it.

    ``flock`` on RUN/train.lock: the kernel releases it when the process ends, however it ends
    (SIGKILL and power loss included), so a stale lock cannot block a later resume. The file is
    never deleted (deleting a locked file would let a second process lock a new file of the same
    name); its content names the holder, for the message a refused process prints.
    """

    def __init__(self, run_dir: Path, *, resuming: bool = False) -> None:
        """Lock ``run_dir``; ConfigError where another process or Trainer holds it (``resuming``: the advice is for
        `--resume`, which cannot pick another train.name)."""
        self.path = RunFolder(run_dir).lock
        self._fd: int | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if fcntl is None:
            log.warning("%s is not locked (this system has no flock): start one training of this run at a time",
                        self.path.parent)
            return
        fd = open_lock_file(self.path, f"run folder {self.path.parent}")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _in_use(self.path, resuming) from None
        except OSError as err:  # a file system without locks (ENOLCK, EOPNOTSUPP): train unlocked
            os.close(fd)
            log.warning("%s is not locked (its file system refused flock: %s): start one training of this run "
                        "at a time", self.path.parent, err.strerror or err)
            return
        self._fd = fd
        try:
            record_holder(fd, self.path)
        except OSError:
            self.release()  # no empty lock file left behind
            raise

    @staticmethod
    def check_free(run_dir: Path) -> None:
        """RunLock's ConfigError (with `--resume`'s advice) where another process or Trainer holds ``run_dir``,
        without taking the lock or writing anything: what a dry run of a resume asks (taking the lock replaced
        train.lock's record of the process that last trained the run, and failed on a read-only run)."""
        path = RunFolder(run_dir).lock
        if fcntl is None or not os.path.lexists(path):
            return
        if path.is_symlink() or not path.is_file():
            os.close(open_lock_file(path, f"run folder {path.parent}"))  # refused as a resume refuses it
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
                         | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return  # unreadable: the resume itself names it
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # released as the descriptor closes
        except BlockingIOError:
            raise _in_use(path, resuming=True) from None
        except OSError:  # a file system without locks: a resume trains unlocked, with a warning
            pass
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def folder_now(self) -> Path | None:
        """The folder the held lock file lies in now, found through its descriptor (Linux's /proc/self/fd): the run
        folder's new place after it was moved while training; None where that cannot be told."""
        where = descriptor_path(self._fd)
        return None if where is None else where.parent

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None

    def __del__(self) -> None:
        self.release()


def _in_use(path: Path, resuming: bool) -> ConfigError:
    """The refusal of a run folder whose lock ``path`` another process or Trainer holds. A resume is not told to
    pick another train.name, which it refuses."""
    rename = "" if resuming else ", or pick another train.name"
    holder = describe_holder(path)
    if holder.startswith(f"pid {os.getpid()} on {socket.gethostname()} "):  # SIGTERM would end the caller
        return ConfigError(f"run folder {path.parent} is held by another Trainer of this process ({holder}; {path}); "
                           f"call that Trainer's release() (its fit() releases the run when it ends){rename}")
    return ConfigError(f"run folder {path.parent} is in use by {holder} ({path}); wait for that training to end or "
                       f"stop it (SIGTERM saves a checkpoint){rename}")


def append_history(run_dir: Path, event: str, step: int, *, overrides: dict[str, Any] | None = None,
                   changed: dict[str, list[Any]] | None = None, world_size: int = 1) -> None:
    """Add one line to RUN/history.jsonl (the whole file is rewritten atomically: a history linked into another
    run, as a copy made with cp -al or cp -as holds, becomes this run's own file and the other is untouched).

    Raises:
        DataError: the history is not a regular file, too large, not UTF-8, or nests JSON too deeply (named).
    """
    path = RunFolder(run_dir).history
    entry = {"event": event, "step": step, "time": _now(), "overrides": overrides or {}, "changed": changed or {},
             "world_size": world_size, "pid": os.getpid(), "host": socket.gethostname()}
    lines = [line for line, _ in _history_lines(path)]
    before = "".join(lines)
    if before and not before.endswith("\n"):
        before += "\n"
    write_text_atomic(path, before + json.dumps(entry) + "\n")


_FIX = "move the file aside to start a new one (the run's checkpoints do not depend on it)"


def _history_lines(path: Path, fix: str = _FIX) -> Iterator[tuple[str, Any]]:
    return json_lines(path, "the run's history", fix=fix) if path.exists() else iter(())


def _metrics_lines(path: Path, fix: str = _FIX) -> Iterator[tuple[str, Any]]:
    return json_lines(path, "the run's metrics log", fix=fix) if path.exists() or path.is_symlink() else iter(())


def check_logs(run_dir: Path) -> None:
    """Read RUN/history.jsonl and RUN/metrics.jsonl as `append_history` and `trim_metrics` will, so that a log they
    cannot take is refused before a start or resume rewrites anything: refused only then, a resume had already
    written its new config.yaml and run.json, and after the advice was followed its history recorded no change.

    Raises:
        DataError: as `append_history` and `trim_metrics`, saying that nothing was changed.
    """
    folder = RunFolder(run_dir)
    fix = f"{_FIX}; nothing was changed"
    for lines in (_history_lines(folder.history, fix), _metrics_lines(folder.metrics, fix)):
        for _ in lines:
            pass


def trim_metrics(run_dir: Path, step: int) -> None:
    """Drop the lines of RUN/metrics.jsonl logged after ``step`` (by an attempt that was killed
    before checkpointing them), so a resumed run logs each step once.

    Afterwards the file is this run's own: one linked into another run (a copy made with cp -al or cp -as) is
    replaced by a copy before the trainer appends to it, so the other run's log is never written.

    Raises:
        DataError: the log is not a regular file, too large, not UTF-8, or nests JSON too deeply (named).
    """
    path = RunFolder(run_dir).metrics
    if not path.exists() and not path.is_symlink():
        return
    # The parsed lines are not kept: a list of them took 8 times the log's size (2 GB for 10^6 logged steps).
    kept, total = [], 0
    for line, value in _metrics_lines(path):
        total += 1
        try:
            if value["step"] <= step:
                kept.append(line if line.endswith("\n") else line + "\n")
        except (KeyError, TypeError):  # a line cut short by a kill
            continue
    if len(kept) != total:
        write_text_atomic(path, "".join(kept))
    else:
        replace_with_own_copy(path)
