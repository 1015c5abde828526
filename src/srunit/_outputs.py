"""The one guard for what a command writes: every output is checked before the first byte is written.

An output may never be, or be inside, an input of the command (compared by file identity,
``st_dev``/``st_ino`` after following symlinks, so ``..`` and links do not hide it), nor be a file of
or inside a run folder, except at the places a command is meant to write into a run (``designated``).
A name that becomes a path component is a folder name (`check_name`), every file name fits the file
system once the temporary-file affixes are added (`check_name_lengths`), an existing file is
replaced only with ``overwrite``, and two commands writing one output at the same time are refused
(`OutputLock`). A folder that must appear whole is built beside its place and renamed into it
(`building_folder`); a full disk is a one-line error naming the file (`disk_full`).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import logging
import os
import re
import secrets
import shutil
import socket
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from srunit._atomic import (
    TEMP_NAME_EXTRA,
    FolderWriter,
    folder_mode,
    replace_with_own_copy,
    stale_temporaries,
    why_unwritable,
)
from srunit._reading import read_json
from srunit.checks import NAME_RULE, is_folder_name, locale_misread
from srunit.errors import ConfigError, DataError, shell_word
from srunit.runtime.run_folder import is_run_folder

try:
    import fcntl
except ImportError:  # Windows: no flock; outputs there are not locked
    fcntl = None  # type: ignore[assignment]

__all__ = ["DOMAIN_FOLDERS", "PARTIAL_INFIX", "OutputLock", "building_folder", "check_name", "check_name_lengths",
           "check_no_link_loop", "check_not_in_a_domain_folder",
           "disk_full", "file_identity", "guard_optional_output", "guard_output", "local_now", "name_max",
           "nearest_existing", "output_arg", "remove_leftovers", "require_empty_output", "within", "would_be_within"]

log = logging.getLogger(__name__)

PARTIAL_INFIX = ".partial-"
LOCK_SUFFIX = ".lock"
LOCK_NAME_EXTRA = len(".") + len(LOCK_SUFFIX)  # `OutputLock`'s ".NAME.lock" beside an output
PARTIAL_NAME_EXTRA = len(".") + len(PARTIAL_INFIX) + 8  # building_folder's ".NAME.partial-" and its 8 characters
NAME_MAX_DEFAULT = 255

Inputs = Iterable[tuple[str, "str | os.PathLike[str] | None"]]


def output_arg(text: str) -> Path:
    """argparse ``type=`` of an output path: an empty string is an error naming the option (``Path('')``
    would silently be the current folder), and so is ``-``, which many tools read as standard output: srunit
    wrote a file named ``-`` and said ``wrote -``."""
    import argparse

    if text == "-":
        raise argparse.ArgumentTypeError("'-' is not standard output here: srunit writes a file or folder; give its "
                                         "path (./- for a file named -)")
    return Path(_refuse_empty(text, "an empty path; give the file or folder to write"))


def path_arg(text: str) -> Path:
    """argparse ``type=`` of a path srunit reads (or a folder it makes): an empty string is an error naming the
    option. ``Path('')`` is the current folder, which messages then named as ``.``, a value the user had not given."""
    return Path(_refuse_empty(text, "an empty path; give the file or folder"))


def text_arg(what: str, default: str) -> Callable[[str], str]:
    """argparse ``type=`` of a text option with a default: an empty value is an error naming the option, where it
    fell back to ``default`` without a word."""
    return lambda text: _refuse_empty(text, f"an empty value; give {what}, or leave the option out for {default}")


def _refuse_empty(text: str, message: str) -> str:
    import argparse

    if not text.strip():
        raise argparse.ArgumentTypeError(message)
    return text


def check_name(name: str, option: str) -> str:
    """``name`` if it can be one folder or file name (as ``train.name`` must be), else ConfigError naming ``option``."""
    if not isinstance(name, str) or not is_folder_name(name):
        raise ConfigError(f"{option} {name!r} must be {NAME_RULE} (it becomes a path component); pass a plain name "
                          f"such as 'photo'")
    if len(name.encode()) > NAME_MAX_DEFAULT - TEMP_NAME_EXTRA:
        raise ConfigError(f"{option}: the name is {len(name.encode())} bytes long; names of at most "
                          f"{NAME_MAX_DEFAULT - TEMP_NAME_EXTRA} bytes fit every file system with srunit's "
                          f"temporary names; pass a shorter name")
    return name


def nearest_existing(path: Path) -> Path:
    """``path`` (made absolute) where it exists, else its nearest parent that does."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_no_link_loop(path: str | os.PathLike[str], option: str) -> None:
    """ConfigError where ``path`` or a folder above it is a symbolic link in a loop of links (``ln -s b
    a; ln -s a b``), naming ``option`` and the link: every check that follows the path's links raised Python's
    RuntimeError ("Symlink loop"), a traceback."""
    path = Path(path).expanduser().absolute()
    for part in reversed((path, *path.parents)):
        if not part.is_symlink():
            continue
        try:
            os.stat(part)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise ConfigError(f"{option} {path}: {part} is a symbolic link to {os.readlink(part)}, a loop of "
                                  f"links that leads to no file or folder; remove the link (rm {shell_word(part)}) "
                                  f"or choose another path (nothing was written)") from None


def check_no_dangling_link(folder: str | os.PathLike[str], option: str, given: Path | None = None) -> None:
    """ConfigError where the folder ``folder``, which a command makes if it is missing, or the nearest folder above
    it that is there, is a symbolic link to nothing: its mkdir said "File exists; check the path, its permissions
    and the free space". ``given``: the output folder the user gave as ``option``, where that is ``folder`` itself
    (then the advice is to pass the folder the link points to); else the path named in the message."""
    path = Path(folder).absolute()
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    if not path.is_symlink() or path.exists():
        return
    passed = given is not None and path == given.absolute()
    given = Path(folder) if given is None else given
    where = "" if path == given.absolute() else f": {path}"
    check_no_link_loop(path, f"{option} {given}{where}" if where else option)
    target = path.resolve()
    blocker = nearest_existing(target)
    if not blocker.is_dir():  # a link into a path below a file: no folder can ever be made there
        raise ConfigError(f"{option} {given}{where} is a symbolic link to {os.readlink(path)}, which lies below the "
                          f"file {blocker}, so no folder can be made there; remove the link (rm {shell_word(path)}) "
                          f"or choose another path (nothing was written)")
    fix = (f"pass the folder it points to instead ({option} {shell_word(target)}), which srunit makes" if passed
           else f"make the folder it points to first (mkdir -p {shell_word(target)})")
    raise ConfigError(f"{option} {given}{where} is a symbolic link to {os.readlink(path)}, which does not exist; "
                      f"{fix}, or choose another path (nothing was written)")


def name_max(folder: Path) -> int:
    """The longest file name, in bytes, that the file system of ``folder`` takes (255 where it does not say)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX_DEFAULT


def check_name_lengths(paths: Sequence[Path], option: str, extra: int = TEMP_NAME_EXTRA,
                       affix: str = "writes through a temporary name") -> None:
    """The last name of each of ``paths``, new or existing, must fit the file system's name limit once ``extra``
    characters of a temporary name (or of what ``affix`` says srunit makes: "keeps a lock file beside it under a
    name") are added, and every folder name on its way below the nearest existing folder must fit as it is
    (folders are made under their own names; a mirrored sub-folder of 250 bytes was refused); ConfigError
    otherwise."""
    limits: dict[Path, int] = {}
    for path in paths:
        # From the parent's nearest existing folder: an output that exists already is still written through (or
        # locked beside) a longer name, so its own name is checked too.
        absolute = Path(path).absolute()
        existing = nearest_existing(absolute.parent)
        limit = limits.setdefault(existing, name_max(existing if existing.is_dir() else existing.parent))
        new_parts = absolute.parts[len(existing.parts):]
        for i, part in enumerate(new_parts):
            added = extra if i == len(new_parts) - 1 else 0
            if len(os.fsencode(part)) + added > limit:
                through = f", and srunit {affix} {extra} bytes longer" if added else ""
                raise ConfigError(
                    f"{option}: the name {part[:40]}... of {path} is {len(os.fsencode(part))} bytes long; this file "
                    f"system takes names of {limit} bytes{through}; choose shorter names (nothing was written)")


def file_identity(path: Path) -> tuple[int, int] | None:
    """(st_dev, st_ino) of what ``path`` names (links followed); None where there is nothing."""
    try:
        st = os.stat(path)  # follows symlinks
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _chain(path: Path) -> list[tuple[Path, tuple[int, int]]]:
    """The real folders (and file) that hold ``path``: itself if it exists, then every existing ancestor."""
    # resolve() follows the links of the existing part and folds '..' after a missing folder, as mkdir -p
    # would once that folder exists: 'new/../data' is data.
    real = nearest_existing(Path(path).resolve())
    out = []
    for p in (real, *real.parents):
        ident = file_identity(p)
        if ident is not None:
            out.append((p, ident))
    return out


def within(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or inside it, by file identity (symlinks followed)."""
    ident = file_identity(folder)
    return ident is not None and Path(path).exists() and ident in {i for _, i in _chain(path)}


def would_be_within(path: Path, folder: Path) -> bool:
    """Whether ``path``, existing or not yet (its nearest existing folder decides), is ``folder`` or inside it,
    by file identity (symlinks followed)."""
    ident = file_identity(folder)
    return ident is not None and ident in {i for _, i in _chain(path)}


def _same_place(a: Path, b: Path) -> bool:
    if a.name != b.name:
        return False
    ia, ib = file_identity(nearest_existing(a.parent)), file_identity(nearest_existing(b.parent))
    return ia is not None and ia == ib and a.parent.exists() and b.parent.exists()


def guard_optional_output(path: str | os.PathLike[str] | None, option: str, *, inputs: Inputs = (),
                          overwrite: bool = False) -> None:
    """`guard_output` for a file the command writes only when ``option`` is given (``--json``); without it,
    ``--overwrite`` would change nothing, without a word, and is refused."""
    if path is not None:
        guard_output(path, option, inputs=inputs, overwrite=overwrite)
    elif overwrite:
        raise ConfigError(f"--overwrite replaces the {option} file if it exists, and no {option} was given; pass "
                          f"{option} FILE as well, or leave --overwrite out")


def guard_output(path: str | os.PathLike[str], option: str, *, inputs: Inputs = (), overwrite: bool = False,
                 folder: bool = False, designated: Sequence[Path] = (), run: Path | None = None,
                 run_folders: bool = True) -> Path:
    """Check, before any work, that ``path`` (given as ``option``) may be written; return it as a Path.

    Args:
        inputs: (option, path) of everything the command reads; the output may be none of them nor inside one.
        overwrite: an existing output file may be replaced (folders are checked by their writers).
        folder: the output is a folder (else a file).
        designated: the exact places the command is meant to write inside an input or a run folder
            (``RUN/report.html`` of ``report RUN``); they pass the input and run-folder checks.
        run: the run folder the command records into (``eval --run RUN``); the output may be inside it, and
            no input may be inside the output (a folder the command replaces).
        run_folders: refuse an output inside any other run folder (False for library calls that record into
            a run, such as the benchmark translating into RUN/eval/translated; the commands check it).

    Raises:
        DataError: the output is or is inside an input or a run folder.
        ConfigError: an empty path, a folder given for a file (or a file for a folder), an existing file
            without ``overwrite``, an unwritable place, a name too long.
    """
    if isinstance(path, str) and not path.strip():
        raise ConfigError(f"{option} is an empty path; give the {'folder' if folder else 'file'} to write")
    out = Path(path).expanduser()
    check_no_link_loop(out, option)  # every check below follows the path's links
    try:
        str(out).encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 (held as lone surrogates): records and reports name it
        if misread := locale_misread(os.fsencode(out)):
            raise ConfigError(f"{option} {os.fsencode(out)!r}: {misread} (nothing was written)") from None
        raise ConfigError(f"{option} {os.fsencode(out)!r} is not a valid UTF-8 path; srunit names its outputs in "
                          f"records, reports and messages as text: choose a UTF-8 name (nothing was written)") from None
    if not folder and out.is_dir():
        raise ConfigError(f"{option} {out} is a folder; give the path of a file, e.g. {out / 'out'}")
    if folder and out.exists() and not out.is_dir():
        raise ConfigError(f"{option} {out} is a file; give a folder (new or empty) to write into")
    check_no_dangling_link(out if folder else out.parent, option, out)
    if not folder and out.exists() and not out.resolve().is_file():
        raise ConfigError(f"{option} {out} is not a regular file (a device, a FIFO or a socket): srunit writes a "
                          f"file by replacing it whole, which would replace {out.resolve()} itself; give the path "
                          f"of a file")
    allowed = any(_same_place(out, d) for d in designated)
    chain = _chain(out)
    if not allowed:
        ids = {ident for _, ident in chain}
        exists = out.exists()
        for name, given in inputs:
            if given is None:
                continue
            ident = file_identity(Path(given))
            if ident is None:
                continue
            where = "is" if exists and chain[0][1] == ident else "is inside" if ident in ids else None
            if where:
                raise DataError(f"{option} {out} {where} {name} {given}: srunit never writes over or among what a "
                                f"command reads; choose an output outside it (nothing was written)")
        own = file_identity(Path(run)) if run is not None else None
        for real, ident in chain:
            if run_folders and real.is_dir() and ident != own and _is_run_folder(real, option, out):
                raise DataError(f"{option} {out} is inside the run folder {real}, whose files srunit writes only "
                                f"through train, eval --run and report; choose an output outside it (nothing "
                                f"was written)")
    if run is not None:
        for name, given in inputs:
            if given is not None and within(Path(given), out):
                raise DataError(f"{name} {given} is inside {out}, which {option} {run} replaces; give the images "
                                f"from a folder outside it (nothing was written)")
    if not folder and (out.exists() or out.is_symlink()) and not overwrite:
        raise ConfigError(f"{option} {out} exists already; pass --overwrite to replace it, or choose another file "
                          "(nothing was written)")
    parent = nearest_existing(out if folder else out.parent)
    if not parent.is_dir():
        raise ConfigError(f"{option} {out}: {parent} is a file, not a folder; choose another path")
    if why := why_unwritable(parent):
        raise ConfigError(f"{option} {out}: the folder {parent} {why}; choose another path")
    # A folder is made under its own name, and locked through `OutputLock`'s ".NAME.lock"; a file is written through
    # a temporary name (and locked too, by a shorter affix).
    if folder:
        check_name_lengths([out], option, LOCK_NAME_EXTRA, "keeps a lock file beside it under a name")
    else:
        check_name_lengths([out], option)
    return out


# What the data commands write, training reads and evaluation reads (testLabels: `eval seg --labels`, recursively)
DOMAIN_FOLDERS = ("trainA", "trainB", "testA", "testB", "testLabels")


def check_not_in_a_domain_folder(out: str | os.PathLike[str], option: str, what: str) -> None:
    """ConfigError where ``out`` lies inside a domain folder (trainA, trainB, testA, testB, testLabels) of a data
    set: `data synthscapes --out ss/trainA/new` made a set there, and a run on ss then trained on its images too
    (image folders are read recursively), and on its label maps, without a word; `score_segmentation(predicted=
    ss/trainA/pred)` wrote its class maps there. ``what``: what would be written there ("the new data set's images")."""
    choose = f"a {option}" if option.startswith("--") else "an output"
    for folder in Path(out).expanduser().resolve().parents:
        root = folder.parent
        if folder.name in DOMAIN_FOLDERS and (root / "trainA").is_dir() and (root / "trainB").is_dir():
            raise ConfigError(f"{option} {out} lies inside {folder}, the {folder.name} folder of the data set {root}, "
                              f"whose images are read recursively: a run on {root}, or its evaluation, would take "
                              f"{what} as its own; choose {choose} outside {root}'s domain folders (nothing was "
                              f"written)")


def local_now() -> datetime.datetime:
    """Now, in the local time zone where Python can hold its offset, else in UTC: a POSIX ``$TZ`` may give offsets
    up to 24:59:59 (``TZ=XYZ-24:30``), past Python's 24 hours, and `astimezone` raised a ValueError on them."""
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        return now.astimezone()
    except (ValueError, OverflowError):
        return now


def record_holder(fd: int, path: Path) -> None:
    """Write who holds a lock (pid, host, start time, command line) into its open lock file ``fd`` at ``path``. An
    OSError names ``path``: a full disk here was reported as a failed write to standard output."""
    since = local_now().isoformat(timespec="seconds")
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": since, "command": sys.argv}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from None


def describe_holder(path: Path) -> str:
    """'pid P on HOST since TIME' from a lock file that ``record_holder`` wrote, or 'another process'
    (a file being written just now, or not ours)."""
    try:
        h = read_json(path, "the lock", limit=_HOLDER_BYTES, follow=False)
        return f"pid {h['pid']} on {h['host']}" + (f" since {h['since']}" if "since" in h else "")
    except (DataError, KeyError, TypeError):
        return "another process"


_HOLDER_BYTES = 64 * 2**10  # pid, host, time and command line


def open_lock_file(path: Path, option: str) -> int:
    """A read-write descriptor of the lock file ``path``, created if absent; it is always a regular file of its
    own: opened without following a link (O_NOFOLLOW) and checked with ``fstat``, so a link planted at its
    place (to a user's file) is refused and left untouched; a lock hard-linked with another run's (a copy made
    with ``cp -al``) is first replaced by a file of its own, so the two runs neither share a lock nor write
    into each other's.

    Raises:
        ConfigError: ``path`` is a symbolic link or not a regular file (naming it and what to do).
    """
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) \
        | getattr(os, "O_CLOEXEC", 0)
    fix = (f"srunit's lock files are plain files it makes itself: remove {path} (rm {shell_word(path)}; what it "
           f"points to is not touched) and run the command again")
    for _ in range(3):
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as err:
            if path.is_symlink():
                raise ConfigError(f"{option}: the lock {path} is a symbolic link (to {os.readlink(path)}), which "
                                  f"srunit never writes through; a copy made with cp -as or a planted link; "
                                  f"{fix}") from None
            raise ConfigError(f"{option}: cannot open the lock {path}: {err.strerror or err}; "
                              f"{_unwritable_folder(path.parent, err, path) or fix}") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise ConfigError(f"{option}: the lock {path} is not a regular file (mode {stat.filemode(st.st_mode)}); "
                              f"{fix}")
        if st.st_nlink <= 1:
            return fd
        os.close(fd)
        replace_with_own_copy(path, copy=False)  # a hard link shared with another run: take a file of its own
    raise ConfigError(f"{option}: the lock {path} keeps being linked to another file; {fix}")


def _is_run_folder(folder: Path, option: str, out: Path) -> bool:
    """`is_run_folder` of a folder on the way to an output; a folder it cannot enter is named as such (it was
    `urx/config.yaml: Permission denied`, a file the user never had)."""
    try:
        return is_run_folder(folder)
    except PermissionError as err:
        raise ConfigError(f"{option} {out}: the folder {folder} cannot be read ({err.strerror}); give yourself read, "
                          f"write and search permission (chmod u+rwx {shell_word(folder)}) or choose another path "
                          f"(nothing was written)") from None


def _unwritable_folder(folder: Path, err: OSError, lock: Path) -> str | None:
    """The advice where ``err``, opening ``lock``, says that nothing can be written in ``folder`` (a read-only file
    system, no permission to write there, or a folder that takes no new file), which removing the lock cannot change;
    None where removing it may help."""
    copy = "a run: cp -r RUN NEW_PLACE, then resume NEW_PLACE"
    if err.errno == errno.EROFS:
        return (f"{folder} is on a read-only file system, where srunit can write neither its lock nor anything else: "
                f"use a folder on a writable file system ({copy})")
    if err.errno in (errno.EACCES, errno.EPERM) and not os.access(folder, os.W_OK):
        return (f"you have no permission to write in {folder}, where srunit keeps its lock: use a folder you can "
                f"write ({copy}), or get write permission for it")
    if not os.path.lexists(lock):  # nothing to remove: the folder refused the new file (sysfs, procfs, as root too)
        return (f"{folder} does not take new files (there is no lock to remove): use a folder on a file system you "
                f"can write ({copy})")
    return None


class OutputLock:
    """An exclusive lock on an output for as long as one command writes it: ``flock`` on ``PARENT/.NAME.lock``
    (as `srunit.engine.run_folder.RunLock` locks a run), released by the kernel however the process ends.

    The lock file is removed on release; a process that locked a file another one has just removed
    (its inode no longer at the path) tries again, so two holders can never coexist. Once locked, what a killed
    holder left beside the output is removed (`remove_leftovers`): its writer held this lock, so it is gone.
    """

    def __init__(self, output: str | os.PathLike[str], option: str) -> None:
        out = Path(output).absolute()
        self.path = out.parent / f".{out.name}{LOCK_SUFFIX}"  # LOCK_NAME_EXTRA bytes longer than the name
        self._fd: int | None = None
        if fcntl is None:
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(20):
            fd = open_lock_file(self.path, option)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise ConfigError(f"{option} {out} is being written by {self._holder()} ({self.path}); wait for "
                                  f"that command to end, or choose another output") from None
            except OSError as err:  # a file system without locks: write unlocked
                os.close(fd)
                log.warning("%s is not locked (%s); run one command at a time into it", out, err.strerror or err)
                return
            if file_identity(self.path) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
                break
            os.close(fd)  # the file was removed by its previous holder: lock the new one
        else:
            raise ConfigError(f"{option} {out}: could not lock {self.path}; try again")
        self._fd = fd
        try:
            record_holder(fd, self.path)
        except OSError:
            self.release()  # no empty lock file left behind
            raise
        remove_leftovers([out], partials=True)

    def _holder(self) -> str:
        return describe_holder(self.path)

    def release(self) -> None:
        if self._fd is not None:
            held = os.fstat(self._fd)
            if file_identity(self.path) == (held.st_dev, held.st_ino):  # not a file at the path of a folder swapped in
                self.path.unlink(missing_ok=True)  # while still held: no other process holds this inode
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def require_empty_output(out: str | os.PathLike[str], option: str = "--out") -> None:
    """Refuse an output folder that exists and is not empty (srunit never overwrites user files).

    Raises:
        DataError: ``out`` is a file or a non-empty folder.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{option} {out} already exists and is not an empty folder; srunit never overwrites "
                        f"files, so pass a new folder or empty this one yourself")


def _stale_partials(out: Path) -> list[Path]:
    """The hidden ``.NAME.partial-XXXXXXXX`` folders (mkdtemp's 8 characters) and ``.NAME.partial-PID`` files
    (an export's) beside ``out``, NAME taken literally: as a glob pattern, ``--out 'data[1]'`` took data1's
    working folder (of a command running under its own lock) and a user's ``.data1.partial-mine``."""
    if not out.parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(out.name)}{re.escape(PARTIAL_INFIX)}(?:[a-z0-9_]{{8}}|[0-9]+)", re.DOTALL)
    return sorted(out.parent / name for name in os.listdir(out.parent) if pattern.fullmatch(name))


def remove_leftovers(outputs: Sequence[Path], *, partials: bool = False) -> None:
    """Remove what a killed command left while it wrote ``outputs``: the half-written temporary file of an atomic
    write (`srunit._atomic.stale_temporaries`) and, with ``partials``, the hidden ``.NAME.partial-*`` file or folder
    an output is built in (an export, `building_folder`). SIGKILL runs no clean-up, so these stayed in the user's
    folder for good; nothing else reads them. Only while holding the `OutputLock` every writer of them holds."""
    leftovers = stale_temporaries(outputs)
    if partials:
        leftovers += [stale for out in outputs for stale in _stale_partials(out)]
    for stale in leftovers:
        log.warning("removing %s, left by an interrupted run", stale)
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def building_folder(out: str | os.PathLike[str], option: str, subfolders: Sequence[str] = ()) -> Iterator[FolderWriter]:
    """Build a folder whole or not at all: yield the writer (`FolderWriter`) of a temporary sibling
    ``.NAME.partial-XXXXXXXX``, rename it onto ``out`` (absent or empty) when the block ends, remove it if the block
    fails. Hold the output's `OutputLock` meanwhile; partial folders of killed runs found then are removed.

    The folder holding ``out`` is opened once: the temporary folder is made, written, renamed and removed relative
    to it, so moving that folder away and putting a link in its place while the block writes sends nothing into the
    folder linked to; the rename is refused then, in one line naming both places.

    ``subfolders``: rename only these sub-folders of the temporary folder into ``out`` (which may then hold
    other things), e.g. the two halves of ``data maps``.
    """
    out = Path(out).absolute()
    # The folder is built under a name 18 bytes longer than its own: --out of 238 to 241 bytes passed guard_output's
    # check and failed at mkdtemp, naming the hidden folder with advice to check permissions and free space.
    check_name_lengths([out], option, extra=PARTIAL_NAME_EXTRA)
    targets = [out / name if name != "." else out for name in subfolders or ["."]]
    for dst in targets:
        if dst.is_symlink():  # a rename cannot replace a link by a folder: it said "filled by someone"
            fix = ("pass the folder it points to, or a new path" if dst == out else
                   f"remove the link (rm {shell_word(dst)} leaves the folder it points to as it is), or pass "
                   f"another {option}")
            raise DataError(f"{option} {dst} is a symbolic link (to {os.readlink(dst)}); srunit builds the folder "
                            f"beside it and renames it into place, which cannot replace a link: {fix} (nothing was "
                            f"written)")
        if _is_working_folder(dst):
            raise DataError(f"{option} {dst} is the working folder; srunit builds the folder beside it and renames it "
                            f"into place, which would leave this shell in a deleted folder: pass a new folder inside "
                            f"it instead, e.g. {option} ./out (nothing was written)")
    for dst in dict.fromkeys([out, *targets]):  # data maps renames its halves into --out: into a mount point too
        if dst.is_dir() and _is_mount_point(dst):
            raise _mount_point_error(option, out, dst)
    with OutputLock(out, option), FolderWriter(out.parent) as home:  # the lock removes killed runs' partial folders
        name = _partial_name(out, home)
        tmp = home.make_folder(name)
        _as_if_made_in(tmp, out if out.is_dir() else None)
        for sub in subfolders:  # a half the user made: what is built in it gets its group, as in place
            if (out / sub).is_dir():
                _as_if_made_in(home.make_folder(f"{name}/{sub}"), out / sub)
        try:
            with disk_full(out, option), home.subfolder(name) as built:
                yield built
                # Everything below is by path (attributes, the renames' messages): in place, or stop.
                home.check_in_place(BUILDING)
                kept: list[str] = []
                for sub in subfolders or ["."]:
                    src, dst = (Path(name), Path(out.name)) if sub == "." else (Path(name, sub), Path(out.name, sub))
                    if (out.parent / dst).is_dir() and not (out.parent / dst).is_symlink():
                        _take_on_attributes(out.parent / src, out.parent / dst)
                    try:
                        home.replace(src, dst)  # onto an absent or empty folder; atomic within one file system
                    except OSError as err:
                        dst = out.parent / dst
                        if err.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                            # `data maps` renames its halves one by one: one may be in place already.
                            what = (f"of this run only {' and '.join(kept)} {'was' if len(kept) == 1 else 'were'} "
                                    f"kept, whole" if kept else "nothing of this run was kept")
                            raise DataError(f"{option} {dst} was filled by someone else while srunit wrote it; "
                                            f"{what}: choose a new folder") from None
                        if err.errno in (errno.EBUSY, errno.EXDEV):  # a mount point the check above did not see
                            raise _mount_point_error(option, out, dst) from None
                        raise
                    kept.append(str(out.parent / dst))
        finally:
            home.remove(name)


BUILDING = "the command"  # `FolderWriter.check_in_place`'s words for what `building_folder` stopped


def _partial_name(out: Path, home: FolderWriter) -> str:
    """A name ``.NAME.partial-XXXXXXXX`` (8 hexadecimal digits, as `_stale_partials` knows them) not taken in the
    folder ``home`` of ``out``: the `OutputLock` held removed those of killed runs, and no other process makes them."""
    taken = set(home.names())
    while True:
        name = f".{out.name}{PARTIAL_INFIX}{secrets.token_hex(4)}"
        if name not in taken:
            return name


def _is_mount_point(folder: Path) -> bool:
    """Whether ``folder`` is a mount point, or on another file system than the folder it is in: a folder built
    beside it cannot be renamed onto it (EBUSY) or into it (EXDEV)."""
    try:
        return os.path.ismount(folder) or folder.stat().st_dev != folder.parent.stat().st_dev
    except OSError:
        return False


def _mount_point_error(option: str, out: Path, dst: Path) -> DataError:
    """`building_folder`'s refusal of a mount point ``dst`` (``out`` or a sub-folder it renames into it): the
    rename's "Device or resource busy" came with advice to check permissions and free space, and `data maps` into
    one failed with "Invalid cross-device link"."""
    if dst != out:
        return DataError(f"{option} {out}: {dst} is a mount point; srunit builds {dst.name} beside it and renames it "
                         f"into place, which cannot replace a mount point: give that folder another name, or pass "
                         f"another {option} (nothing was kept)")
    return DataError(f"{option} {out} is a mount point (or on another file system than {out.parent}); srunit "
                     f"builds the output beside it and renames it into place, which cannot cross into a mount point: "
                     f"pass a new folder inside it instead, e.g. {option} {out / 'out'} (nothing was kept)")


def _is_working_folder(folder: Path) -> bool:
    try:
        return folder.is_dir() and os.path.samefile(folder, os.getcwd())
    except OSError:  # no working folder (deleted under this process): nothing to replace
        return False


def _as_if_made_in(tmp: Path, home: Path | None) -> None:
    """Give the temporary folder ``tmp``, made beside the output, the mode of a folder ``mkdir`` makes (mkdtemp's
    0700 would become the data set's: unreadable to everyone else) and what decides the group of what is built in
    it: that of ``home``, the existing folder it is renamed onto or its sub-folders into (``data maps``' halves),
    or, where ``tmp`` becomes a new folder (``home`` None), what mkdtemp gave it in the same parent folder. A
    setgid folder gives its group and its setgid bit to the folders made in it, and its group to the files: the
    chmod cleared the bit and the halves were built outside ``home``, so a set built in a group's setgid folder
    came out in the user's own group."""
    setgid = (home or tmp).stat().st_mode & stat.S_ISGID
    tmp.chmod(folder_mode() | setgid)
    if home is None or not setgid or tmp.stat().st_gid == home.stat().st_gid:
        return
    try:
        os.chown(tmp, -1, home.stat().st_gid)
    except OSError:  # a group this user is not in: what is built keeps the user's own
        log.warning("%s gives its group %d to what is made in it, which this user cannot give; the output is of "
                    "the user's group", home, home.stat().st_gid)
    else:
        tmp.chmod(folder_mode() | setgid)  # chown clears the setgid bit on some systems


def _take_on_attributes(new: Path, old: Path) -> None:
    """Give the folder ``new``, about to be renamed onto the empty folder ``old``, what the user had given ``old``:
    its permission bits, extended attributes (ACLs among them) and group. The rename replaced a folder made
    for the output (group-shared, setgid, 0750) by one of srunit's own making."""
    shutil.copystat(old, new)
    os.utime(new)  # filled now: copystat's old times made `find -newer`, make and rsync see it unchanged
    group = old.stat().st_gid
    if new.stat().st_gid != group:
        try:
            os.chown(new, -1, group)
        except OSError:  # a group this user is not in: the folder keeps the user's own
            log.warning("%s was of group %d, which this user cannot give to a folder; the output is of the user's "
                        "group", old, group)
        else:
            os.chmod(new, old.stat().st_mode)  # chown clears the setgid bit on some systems


@contextlib.contextmanager
def disk_full(path: str | os.PathLike[str], option: str, done: str = "") -> Iterator[None]:
    """Turn a full disk (ENOSPC, EDQUOT) while writing ``path`` into a one-line DataError naming it; ``done``
    says what was written before (e.g. "3 of 10 images were written")."""
    try:
        yield
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        name = err.filename or path
        raise DataError(f"{option} {path}: the disk is full ({name}: {err.strerror or 'no space left on device'})"
                        f"{'; ' + done if done else ''}; no file was left half-written: free space and run the "
                        f"command again") from None
