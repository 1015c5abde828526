"""`srunit` command line: one sub-module per subcommand (parse -> config -> library call), each imported only
when its command runs (`srunit.cli.commands`)."""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import signal
import stat
import sys
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from srunit._atomic import check_umask
from srunit._version import __version__
from srunit.cli.commands import COMMANDS
from srunit.errors import WRITE_FAILURES, SrunitError, TrainingStopped, process_limit, shell_word

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

__all__ = ["BROKEN_PIPE", "COMMANDS", "INTERRUPTED", "build_parser", "command_module", "entry", "main"]

# What is true after Ctrl-C, per command: only training has checkpoints; every file is written atomically.
INTERRUPTED = {
    "train": "training had not started; run the command again",
    "translate": "each output written so far is whole, the others were not written; run the command again with "
                 "--overwrite, or into a new --output",
    "export": "no file was written (the export is written whole or not at all); run the command again",
    "eval": "scores and files of this evaluation that were not in place yet were not written; run the command again",
    "": "every file written so far is whole; run the command again",
}


def command_module(name: str) -> ModuleType:
    """The module of subcommand ``name`` (imported on first use)."""
    return importlib.import_module(COMMANDS[name].module)


class _Parser(argparse.ArgumentParser):
    """A parser of `srunit` and its commands (argparse gives each command's own sub-commands the class of their
    parent). An option is taken only as spelled in full: argparse takes a unique prefix by default, so `bench
    synthscapes --seed 7` (the option of `tune` and `data`) was `--seeds 7`, seven runs from seed 0 instead of one
    run of seed 7. And an error writing its help or usage reaches `main`, one line and status 2: argparse drops it
    (`srunit train --help > /dev/full` wrote nothing and exited 0)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        if message:
            (file or sys.stderr).write(message)


class _TopParser(_Parser):
    """The parser of `srunit`, whose help lists the methods and presets: they are looked up (the method
    registry loads, and its plugins) only when the help is shown, not for every command."""

    def format_help(self) -> str:
        from srunit.config import preset_names
        from srunit.registry import METHODS

        self.description = "\n".join(textwrap.fill(text, 78, break_on_hyphens=False) for text in (
            "Unpaired image-to-image translation that does not flip semantics.",
            f"Methods (srunit train --method.name NAME): {', '.join(METHODS.names())}.",
            f"Presets (srunit train --preset NAME): {', '.join(preset_names())}."))
        return super().format_help()


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names: its first word that is not an option (`srunit` itself takes flags only)."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of `srunit`. With ``argv``, only the subcommand it names gets its full parser (its module is
    imported); the others are listed by their summary. Without, every subcommand's parser is built."""
    parser = _TopParser(
        prog="srunit",
        formatter_class=argparse.RawDescriptionHelpFormatter,  # names such as cut-self-distance are not split
    )
    parser.add_argument("--version", action="version", version=f"srunit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    # The commands' parsers are not of the top parser's class: of it, each --help showed the top's description.
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    chosen = None if argv is None else _command_in(argv)
    for name, command in COMMANDS.items():
        if argv is None or name == chosen:
            command_module(name).add_parser(sub)
        else:  # listed in the help; never parsed (argv does not name it)
            sub.add_parser(name, help=command.summary)
    return parser


# The status of a command whose reader went away (`srunit ... | head`): 128 + SIGPIPE, as a shell reports a writer
# that the signal ended.
BROKEN_PIPE = 141


def _tolerant_streams() -> None:
    """Text that the terminal's encoding cannot show (a file name in UTF-8 under LANG=C or PYTHONIOENCODING=ascii,
    undecodable bytes) is written with backslash escapes instead of ending the command in UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) in ("strict", "surrogateescape") and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a stream that cannot change (closed, detached): leave it
                pass


def _drop_stdout() -> None:
    """After the reader of stdout closed its end: point stdout at /dev/null, so nothing (the interpreter's
    final flush included) writes to the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a file descriptor (an in-process caller's stream)
        pass


def _stdout_error(command: str | None, err: OSError) -> int:
    """One line for a write that names no file, a print to stdout on a full disk (`> /dev/full`) above all; stdout
    then goes to /dev/null so the interpreter's last flush does not fail again with a message of its own."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError:
        pass
    name = command if command and command.startswith("srunit") else f"srunit {command}" if command else "srunit"
    if err.errno in (errno.ENOSPC, errno.EDQUOT) and _stdout_has_space():
        # a file that names no path (a buffered log's last flush) on a full disk: not standard output, a file on a
        # disk with space, which the advice to send it elsewhere did not help
        print(f"{name}: error: a write failed ({err.strerror}): a disk srunit writes to is full (standard output's "
              f"has space); free space and run the command again", file=sys.stderr)
        return 2
    _drop_stdout()
    print(f"{name}: error: a write to standard output failed ({err.strerror or err}); the files the command wrote "
          f"are whole: send its output to a disk with space, or to /dev/null", file=sys.stderr)
    return 2


def _stdout_has_space() -> bool:
    """Whether standard output is a regular file on a disk with free space (a pipe, a terminal or /dev/full: no)."""
    try:
        return stat.S_ISREG(os.fstat(1).st_mode) and os.fstatvfs(1).f_bavail > 0
    except (OSError, AttributeError):  # no statvfs (Windows)
        return False


def _guard_standard_descriptors() -> None:
    """Open /dev/null on 0, 1 and 2 where the caller closed them (`srunit ... >&-`): else the first file srunit
    opens takes descriptor 1, and whatever writes to stdout (a library's C code) would write into that file. The
    Python streams of those descriptors are made again where Python left them None."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            try:
                devnull = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
            except OSError:
                return
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)
    # Python set sys.stdin/stdout/stderr to None for a descriptor closed when it started: progress bars and logging
    # then met None (`2>&-`: 'NoneType' object has no attribute 'isatty', status 1, nothing done, not a word).
    for name, fd, mode in (("stdin", 0, "r"), ("stdout", 1, "w"), ("stderr", 2, "w")):
        if getattr(sys, name) is None:
            try:
                setattr(sys, name, os.fdopen(fd, mode, buffering=1, errors="backslashreplace", closefd=False))
            except OSError:
                pass


def _cwd_gone() -> bool:
    """Whether the current folder was deleted (or moved away) under the shell: torch's libraries then fail to load
    with "Intel oneMKL FATAL ERROR: Cannot load libtorch_cpu.so", which names neither the cause nor the fix."""
    try:
        os.getcwd()
    except FileNotFoundError:
        return True
    except OSError:  # unreadable, but there: relative paths still resolve
        return False
    return False


def _parser_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the (sub-)command ``args`` ran, e.g. `srunit data split`'s: an unknown option of `srunit report`
    was answered with the usage of `srunit` itself ("usage: srunit [-h] [--version] [-v] COMMAND ..."), which
    names no option of the command the user typed."""
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        name = getattr(args, subs[0].dest, None) if subs else None
        if not isinstance(name, str) or name not in subs[0].choices:
            return parser
        parser = subs[0].choices[name]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _tolerant_streams()
    if _cwd_gone():
        if not {"-h", "--help", "--version"} & set(argv):
            print("srunit: error: the current folder no longer exists (it was deleted or moved while the shell was "
                  "in it), so relative paths mean nothing; cd to an existing folder and run the command again",
                  file=sys.stderr)
            return 2
        # A help text needs no folder, but torch's libraries (which a command's help loads) do not load from a
        # deleted one: read them from the root.
        os.chdir(os.sep)
    try:
        parser = build_parser(argv)  # the help of `train` lists the methods: their registry loads (and its plugins)
        args, extra = parser.parse_known_args(argv)
    except SrunitError as err:
        print(f"srunit: error: {_one_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while torch and the methods load (a second or two): nothing was started
        command = _command_in(argv)
        print(f"srunit{' ' + command if command else ''}: interrupted before the command started; nothing was done",
              file=sys.stderr)
        return 130
    except OSError as err:  # the help or version, longer than the buffer, written to `> /dev/full`
        if err.filename is None and err.errno in WRITE_FAILURES:
            return _stdout_error(_command_in(argv), err)
        raise
    # In a torchrun job only rank 0 reports progress; the other processes report problems only.
    quiet = os.environ.get("RANK", "0") != "0"
    level = logging.DEBUG if args.verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, handlers=[_log_handler("%(levelname)s %(name)s: %(message)s")])
    module = command_module(args.command)
    prog = _parser_of(parser, args).prog  # "srunit bench speed", as argparse's own refusals name it
    watch = _InterruptWatch()
    try:
        if extra and not getattr(module, "ACCEPTS_OVERRIDES", False):
            _parser_of(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
        check_umask()
        return int(module.run(args, extra) or 0)
    except SrunitError as err:
        if watch.seen:  # a Ctrl-C that a library turned into another error (see _InterruptWatch)
            return _interrupted(args.command, args)
        print(f"{prog}: error: {_one_line(str(err))}", file=sys.stderr)  # a file's name holding a newline: one line
        return 2
    except TrainingStopped as stopped:  # SIGTERM, SIGUSR1 or SIGINT, after checkpointing the step
        # One write of the whole line: every process of a torchrun job prints one into the same pipe, and print's
        # separate write of the newline let another process's line in between.
        sys.stderr.write(stopped.report(args.command) + "\n")
        sys.stderr.flush()
        return stopped.exit_code
    except BrokenPipeError:  # `srunit ... | head`: the reader has what it wanted; end quietly
        _drop_stdout()
        return BROKEN_PIPE
    except OSError as err:  # the file system refused: name the file and the reason, no traceback
        if err.filename is None and err.errno in WRITE_FAILURES:  # a print to `> /dev/full`, a full disk
            return _stdout_error(prog, err)
        if err.errno == errno.EMFILE:  # `ulimit -n` met, by a pipe or socket as often as by a file: none named
            print(f"{prog}: error: too many open files: this process may open {process_limit('-n')}; "
                  f"raise the limit (e.g. ulimit -n 4096) and run the command again", file=sys.stderr)
            return 2
        if err.filename is None:
            raise
        where = _one_line(f"{err.filename}" + (f" -> {err.filename2}" if err.filename2 else ""))
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            print(f"{prog}: error: {where}: the disk is full ({err.strerror}); that file was not "
                  f"written: free space and run the command again", file=sys.stderr)
            return 2
        if err.errno == errno.EACCES:  # `run2/eval/scores.json: Permission denied`, where run2/eval is unreadable
            from srunit._reading import unreadable_folder

            if (folder := unreadable_folder(Path(err.filename))) is not None:
                print(f"{prog}: error: {where}: {err.strerror}: the folder {_one_line(str(folder))} cannot be read; "
                      f"give yourself read permission (chmod u+rx {_one_line(shell_word(folder))}) and run the "
                      f"command again", file=sys.stderr)
                return 2
        if err.errno == errno.EFBIG:  # RLIMIT_FSIZE: not the path, its permissions or the free space
            print(f"{prog}: error: {where}: {err.strerror}: the file size limit of this process, "
                  f"{process_limit('-f')}, was met; raise it (`ulimit -f unlimited` in the shell, or the job's limit) "
                  f"and run the command again", file=sys.stderr)
            return 2
        print(
            f"{prog}: error: {where}: {err.strerror or err}; check the path, its permissions and "
            f"the free space",
            file=sys.stderr,
        )
        return 2
    except MemoryError:  # `ulimit -v`, or a machine without the memory: Python's allocator refused
        print(f"{prog}: error: out of memory (MemoryError) with this process's address space limited "
              f"to {process_limit('-v')}; raise the limit or free memory, or ask for less (smaller images, batches "
              f"or networks)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return _interrupted(args.command, args)
    except Exception:
        if watch.seen:
            return _interrupted(args.command, args)
        raise
    finally:
        watch.close()


def _log_handler(form: str) -> logging.Handler:
    """A handler on standard error whose lines are one line each (`srunit.checks.OneLineFormatter`)."""
    from srunit.checks import OneLineFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter(form))
    return handler


def _one_line(text: str) -> str:
    from srunit.checks import one_line  # numpy's import, only where an error is printed

    return one_line(text)


def _interrupted(command: str, args: argparse.Namespace | None = None) -> int:
    advice = INTERRUPTED.get(command, INTERRUPTED[""])
    if command == "demo" and args is not None and args.name is not None:  # the folder it named (a time stamp)
        advice = (f"every file written so far is whole; rerun srunit demo with --runs-dir {shell_word(args.runs_dir)} "
                  f"--name {shell_word(args.name)} (and the same other options) to continue the demo")
    print(f"srunit {command}: interrupted; {advice}", file=sys.stderr)
    return 130


class _InterruptWatch:
    """Remembers a SIGINT (Ctrl-C) while a command runs, which is raised as KeyboardInterrupt as Python does.

    Libraries catch it: torch's archive reader turns it into a RuntimeError, and an import it cut short leaves a
    half-made module whose next use is an AttributeError, so Ctrl-C while a .pt2 file loaded was reported as `PATH
    could not be loaded ...; it is damaged ...; export it again` (status 2). An error after a SIGINT is reported as
    the interruption. Only where Python's own handler is in place, in the main thread (a command that handles
    SIGINT itself, `train`, replaces it while it runs).
    """

    def __init__(self) -> None:
        self.seen = False
        self._installed = (threading.current_thread() is threading.main_thread()
                           and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        if self._installed:
            signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.seen = True
        raise KeyboardInterrupt

    def close(self) -> None:
        if self._installed and signal.getsignal(signal.SIGINT) == self._handle:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        self._installed = False


def entry() -> None:
    """The `srunit` command and `python -m srunit`: `main`, then exit with its status.

    A process of a torchrun job leaves without the interpreter's finalization once its command has
    returned: by then its collectives are finished (training ends on a barrier, then the process
    group is destroyed) and its files are closed, while communication threads of the C++ backends
    (gloo) torn down during finalization have aborted a finished process (SIGABRT, "terminate called
    without an active exception", once in CI after a complete run). The exit hook of W&B is the one
    that still has work then (its service process writes the run's records), so it runs first.
    """
    _guard_standard_descriptors()
    try:
        code = main()
    except SystemExit as leaving:  # argparse's --help and --version: their text is flushed below too (`> /dev/full`)
        if leaving.code is not None and not isinstance(leaving.code, int):
            raise
        code = leaving.code or 0
    except OSError as err:  # the command's message met a full or failing standard error (`2> /dev/full`) too
        if err.filename is not None or err.errno not in (*WRITE_FAILURES, errno.EPIPE):
            raise
        code = 2  # it failed, and nothing can say so: its status does (it was 1, Python's for a traceback)
    try:
        if sys.stdout is not None:  # None where stdout was closed when the interpreter started
            sys.stdout.flush()  # what is still buffered meets a closed pipe here, not in the interpreter's exit
    except BrokenPipeError:
        _drop_stdout()
        code = code or BROKEN_PIPE
    except OSError as err:  # `> /dev/full`: the last output of the command could not be written
        try:
            code = _stdout_error(None, err) if code == 0 else code
        except OSError:  # standard error is full as well
            code = 2
    if os.environ.get("WORLD_SIZE", "1").strip() not in ("", "0", "1"):  # a job (or a malformed WORLD_SIZE)
        if "wandb" in sys.modules:  # its exit hook, skipped here, waits for its service to write the run
            sys.modules["wandb"].teardown()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
