"""Exceptions raised for bad user input, and for a training stopped by a signal. Each message names the thing,
the value and the fix."""

from __future__ import annotations

import errno
import os
import shlex
import signal
from pathlib import Path

try:  # imported with the package: where memory has run out, importing it then fails too
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of ``err``'s message, at most ``limit`` characters ('' where it has none): what a one-line
    error quotes of another library's exception, whose message may run to many lines."""
    text = str(err).strip()
    return text.splitlines()[0][:limit] if text else ""


# Characters that show a name as other text: the controls (a newline forges a second line) and the bidirectional
# controls (U+202E shows the rest backwards). srunit.checks refuses them in names it makes and escapes them in lines.
HIDDEN_CHARACTERS = frozenset({chr(c) for c in range(32)} | {chr(127)} | set(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
_ANSI_C = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def shell_word(value: str | os.PathLike[str]) -> str:
    """``value`` (a path, or a name the user gave) as a shell reads it back from a command a message advises to
    paste: as it is where it holds only characters a shell takes literally (``runs/r1``), else quoted
    (``'runs/my run'``): pasted unquoted, ``srunit train --resume runs/my run`` resumed ``runs/my``. A word holding
    a `HIDDEN_CHARACTERS` character is written in the shell's ANSI-C quotes (``$'nl\\nx'``, bash and zsh), so that the
    command stays one line and names that folder: escaped inside plain quotes it named another. Every path or
    user's word in a pasteable command of a message goes through this; paths named in prose stay as they are."""
    text = os.fspath(value)
    if HIDDEN_CHARACTERS.isdisjoint(text):
        return shlex.quote(text)
    return "$'" + "".join(_ANSI_C.get(c) or _bytes_escaped(c) if c in HIDDEN_CHARACTERS or c in _ANSI_C else c
                          for c in text) + "'"


def _bytes_escaped(character: str) -> str:
    """``character`` as the ANSI-C escapes of its UTF-8 bytes (``\\xe2\\x80\\xae``): bash reads those back as the
    same bytes in any locale, where ``\\u202e`` stayed six characters under LANG=C (a name no file has)."""
    return "".join(f"\\x{byte:02x}" for byte in character.encode("utf-8", "surrogateescape"))


class SrunitError(Exception):
    """Base class for errors caused by user input (config, data, checkpoints)."""


class ConfigError(SrunitError, ValueError):
    """An unknown key or an invalid value in a config file or a command-line override."""


class DataError(SrunitError):
    """A missing or empty image folder, or an unreadable image file."""


class FolderMoved(DataError):
    """An output folder moved or replaced while a command wrote into it (`srunit._atomic.check_folder_in_place`). A
    job process of `srunit.synthscapes.parallel` leaves on it without a word: its caller holds the same folder open
    and says so once, where each of N jobs printed the line (and a traceback) before it."""


class CheckpointError(SrunitError):
    """A checkpoint that is missing, incomplete or of an unknown layout."""


class JobLost(SrunitError):
    """A collective of a job of several processes failed: another process ended or its connection broke."""


class MethodError(SrunitError):
    """A training method (most often a plugin's) broke its contract while it trained: a phase's loss that is not a
    scalar floating-point tensor, logs that are not one-element tensors, an extra state a checkpoint cannot hold,
    or an exception raised in a plugin's code."""


class TrainingDiverged(SrunitError):
    """A loss became inf or nan; nothing after the last finite checkpoint was saved."""


# The process limits a message may name: `ulimit` option -> resource's name.
_LIMITS = {"-f": "RLIMIT_FSIZE", "-n": "RLIMIT_NOFILE", "-v": "RLIMIT_AS"}


def process_limited(option: str) -> bool:
    """Whether this process's soft limit that `ulimit OPTION` sets is finite (see `process_limit`)."""
    return resource is not None and resource.getrlimit(getattr(resource, _LIMITS[option]))[0] != resource.RLIM_INFINITY


def process_limit(option: str) -> str:
    """This process's soft limit that `ulimit OPTION` sets (``-f`` file size, ``-n`` open files, ``-v`` memory),
    in words for a message: ``"102,400 bytes (ulimit -f)"``, ``"32 (ulimit -n)"``, ``"unlimited (ulimit -v)"``."""
    if resource is None:
        return f"ulimit {option}"
    limit = resource.getrlimit(getattr(resource, _LIMITS[option]))[0]
    unit = "" if option == "-n" else " bytes"
    return f"{'unlimited' if limit == resource.RLIM_INFINITY else f'{limit:,}{unit}'} (ulimit {option})"


# What a write without a file name (a print) meets on a full disk, over quota, past a size limit or on a failing one.
WRITE_FAILURES = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def reported_in_one_line(err: BaseException) -> bool:
    """Whether srunit's command line reports ``err`` in one line, with no traceback (`srunit.cli.main`'s branches):
    srunit's own errors and stops, a Ctrl-C (KeyboardInterrupt: "interrupted"), MemoryError, and the OSErrors of the
    environment: one naming its file, a failed write naming none, too many open files (`ulimit -n`), a closed pipe.
    Optuna, which logs a failed trial's traceback before the exception reaches the command line, drops the traceback
    of these."""
    if isinstance(err, (SrunitError, TrainingStopped, MemoryError, KeyboardInterrupt)):
        return True
    return isinstance(err, OSError) and (err.filename is not None or isinstance(err, BrokenPipeError)
                                         or err.errno in (*WRITE_FAILURES, errno.EMFILE))


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
    code a shell reports for a process ended by that signal, so schedulers read it as such. Raised by
    the trainer (`srunit.engine.signals` has the handlers); here so that the command line catches it
    without importing the engine.
    """

    def __init__(self, signum: int, step: int, checkpoint: Path, run_dir: Path) -> None:
        self.signal, self.step, self.checkpoint, self.run_dir = signum, step, checkpoint, run_dir
        self.exit_code = 128 + signum
        super().__init__(f"{self.where()}; continue with `srunit train --resume {shell_word(run_dir)}`")

    def where(self) -> str:
        """What stopped and what was kept, without the advice: ``stopped by SIGINT after step 40; checkpoint ... is
        complete`` (a job of a study, whose caller says how to continue, prints this)."""
        return f"stopped by {signal_name(self.signal)} after step {self.step}; checkpoint {self.checkpoint} is complete"

    def report(self, command: str) -> str:
        """The line `srunit COMMAND` prints for this stop: ``srunit train (rank R): stopped by ...``, with the rank
        in a job of several processes."""
        rank = f" (rank {os.environ['RANK']})" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""
        if getattr(self, "step", None) is None:
            return f"srunit {command}{rank}: {self}"
        stopped = (f"srunit {command}{rank}: stopped by {signal_name(self.signal)} after step {self.step} of "
                   f"{self.run_dir}; its checkpoint is complete")
        if command in STUDY_COMMANDS:  # a run of a study stopped
            return f"{stopped}; rerun the same command (with the same --out) to continue"
        if command == "demo":  # a one-seed benchmark in RUNS_DIR/NAME/CONDITION/RUN, NAME a time stamp by default
            demo = Path(self.run_dir).parent.parent
            return (f"{stopped}; rerun srunit demo with --runs-dir {shell_word(demo.parent)} --name "
                    f"{shell_word(demo.name)} (and the same other options) to continue the demo; `srunit train "
                    f"--resume` would finish that run only")
        return f"srunit {command}{rank}: {self}"
