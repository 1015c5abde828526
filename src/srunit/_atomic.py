"""Atomic file writes: a reader (a browser, a viewer polling a run folder, a second process) sees
either the previous file or the complete new one, never half a file, and a crash leaves the
previous file intact."""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["FILE_MODE", "READ_ONLY", "TEMP_NAME_EXTRA", "check_output_file", "check_umask", "replace_with_own_copy",
           "stale_temporaries", "read_umask", "why_unwritable", "write_bytes_atomic", "write_text_atomic",
           "write_json_atomic", "open_append", "check_folder_in_place", "descriptor_path", "FolderWriter",
           "folder_writer"]

# mkstemp creates 0600 files; results, reports and caches are meant to be shared like any other file: 0644, less
# what the process's umask withholds (a umask of 077 keeps every file private, as open() would).
FILE_MODE = 0o644
_UMASK: int | None = None


def check_umask(where: str = "") -> None:
    """ConfigError where the umask takes the owner's own permissions from what srunit makes: under `umask 0777` an
    export it had just written could not be read back ("damaged ... export it again", which failed the same way),
    under `umask 0222` a run folder it had just made took no lock (the user's folder was blamed) and was left to
    block the name, and matplotlib's temporary folders failed to be removed (tracebacks). Every command checks it
    before anything; so do the API's writers (``where``: the function, for the message)."""
    from srunit.errors import ConfigError

    global _UMASK
    mask = _UMASK = read_umask()  # the files this writer makes follow the umask of now (os.umask(0o077) since)
    taken = [what for bit, what in ((0o400, "read"), (0o200, "write"), (0o100, "search")) if mask & bit]
    if taken:
        shown = ", ".join(taken[:-1]) + " and " + taken[-1] if len(taken) > 1 else taken[0]
        fix = "and run the command again" if not where else f"in this process (os.umask(0o022)) before {where}"
        raise ConfigError(f"the umask {mask:04o} takes your own {shown} permission from every file and folder srunit "
                          f"makes, which it must then read or write in; set a umask that keeps them (e.g. `umask "
                          f"022`) {fix}")


def read_umask() -> int:
    """The process's umask: from /proc on Linux, which reads it without changing it; elsewhere by setting it and
    setting it back (for that instant another thread's new files would get 022)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _umask() -> int:
    """The process's umask, read once."""
    global _UMASK
    if _UMASK is None:
        _UMASK = read_umask()
    return _UMASK


def file_mode() -> int:
    """``FILE_MODE`` less the process's umask."""
    return FILE_MODE & ~_umask()


def folder_mode() -> int:
    """0777 less the process's umask, as ``mkdir`` makes folders (mkdtemp makes them 0700)."""
    return 0o777 & ~_umask()


# The temporary name of ``write_bytes_atomic`` is ".NAME.sr-XXXXXXXX.tmp": NAME plus this many bytes (mkstemp
# draws 8 characters); `srunit._outputs.check_name_lengths` checks names against the file system with it. "sr-" (srunit)
# keeps a user's own hidden file (".a.png.original.tmp", 8 letters) from being taken for a killed write's.
TEMP_PREFIX = ".sr-"
TEMP_NAME_EXTRA = len(".") + len(TEMP_PREFIX) + 8 + len(".tmp")
# The 8 characters: mkstemp draws them from [a-z0-9_], `FolderWriter` from hexadecimal digits.
_TEMP_NAME = re.compile(r"\.(?P<name>.+)" + re.escape(TEMP_PREFIX) + r"[a-z0-9_]{8}\.tmp", re.DOTALL)


def stale_temporaries(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The temporary files that writes of ``paths`` left beside them (``.NAME.sr-XXXXXXXX.tmp``, regular files only):
    a process killed inside `write_bytes_atomic` (SIGKILL, power loss) leaves its half-written file there. Each
    folder is listed once. Only for a caller that holds the lock every writer of ``paths`` holds
    (`srunit._outputs.OutputLock`): otherwise the temporary of a write in progress would be among them.
    """
    names: dict[Path, set[str]] = {}
    for path in map(Path, paths):
        names.setdefault(path.parent, set()).add(path.name)
    found: list[Path] = []
    for folder, wanted in names.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:  # absent, or not a folder: nothing was written there
            continue
        for entry in entries:
            match = _TEMP_NAME.fullmatch(entry.name)
            if match and match["name"] in wanted and entry.is_file(follow_symlinks=False):
                found.append(folder / entry.name)
    return sorted(found)


READ_ONLY = "is on a read-only file system"  # `why_unwritable`'s words, which the run folder's making shares


def why_unwritable(folder: Path) -> str | None:
    """Why new files cannot be made in ``folder``, for a message ("is on a read-only file system", "is not writable
    for this user"), or None where they can: root on a read-only mount was told the folder was not writable for
    this user."""
    if os.access(folder, os.W_OK | os.X_OK):
        return None
    try:
        if os.statvfs(folder).f_flag & getattr(os, "ST_RDONLY", 1):
            return READ_ONLY
    except (OSError, AttributeError):  # no statvfs (Windows)
        pass
    return "is not writable for this user"


def check_output_file(path: str | os.PathLike[str], option: str) -> Path:
    """Check, before any work, that a file can be written at ``path`` (given as ``option``).

    Raises:
        ConfigError: ``path`` is a folder, or a part of its parent path is a file, or the nearest
            existing parent folder is not writable; naming the option, the path and the fix.
    """
    from srunit.errors import ConfigError

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give the path of a file, e.g. {path / 'out.json'}")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{option} {path}: {parent} is a file, not a folder; choose another path")
    if why := why_unwritable(parent):
        raise ConfigError(f"{option} {path}: the folder {parent} {why}; choose another path")
    return path


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    Parent folders are created; the file gets mode ``FILE_MODE`` (0644) less the umask. If anything fails, the
    temporary file is removed and an existing ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder: os.replace is atomic only within one file system.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TEMP_PREFIX}", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), file_mode())
            f.write(data)
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        if err.filename is None:  # a failed write names no file (ENOSPC): name the one being written
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see ``write_bytes_atomic``); newlines are kept as given."""
    write_bytes_atomic(path, text.encode(encoding))


def _json_bytes(data: Any) -> bytes:
    """``data`` as srunit writes JSON files: indented, with a final newline."""
    return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented JSON with a final newline, atomically (see ``write_bytes_atomic``)."""
    write_bytes_atomic(path, _json_bytes(data))


def replace_with_own_copy(path: str | os.PathLike[str], *, copy: bool = True) -> bool:
    """Make ``path`` a file of its own before it is written in place (appended to, locked): a symbolic link, or
    a file hard-linked elsewhere (a run copied with ``cp -as`` or ``cp -al``), is replaced atomically by a
    regular file holding a copy of its bytes (``copy=False``: an empty one). What it linked to is never
    written. Returns whether ``path`` was replaced (False for a file of its own, or no file).

    Raises:
        DataError: the link points to something that is not a regular file (a FIFO, a device), named.
    """
    from srunit._reading import MAX_LOG_BYTES, open_regular
    from srunit.errors import DataError

    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not (stat.S_ISLNK(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_nlink > 1)):
        return False
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TEMP_PREFIX}", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), file_mode())
            if copy and path.exists():  # a link to nothing is replaced by an empty file
                with os.fdopen(open_regular(path, "the linked file", fix=f"remove the link {path}"), "rb") as src:
                    if os.fstat(src.fileno()).st_size > MAX_LOG_BYTES:
                        raise DataError(f"{path} links to a file of more than {MAX_LOG_BYTES:,} bytes, more than "
                                        f"srunit copies to write it; remove the link {path}")
                    shutil.copyfileobj(src, out)
        os.replace(tmp, path)  # replaces the link itself, never what it points to
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def open_append(path: str | os.PathLike[str]) -> Any:
    """``path`` opened to append text (created if absent), as a file of its own: a link into another run is
    first replaced by a copy (`replace_with_own_copy`), and the file is opened without following a link."""
    path = Path(path)
    replace_with_own_copy(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, FILE_MODE)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:  # replaced by a link since the line above: never write it
        os.close(fd)
        raise OSError(f"{path} was replaced by a link or another kind of file while srunit opened it")
    return os.fdopen(fd, "a", encoding="utf-8")


def descriptor_path(fd: int | None) -> Path | None:
    """Where the file or folder open as ``fd`` is now, found through Linux's /proc/self/fd (after it was moved); None
    where that cannot be told: no descriptor, another system, or the file deleted (as a move to another file system
    does)."""
    if fd is None:
        return None
    try:
        where = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return None if where.endswith(" (deleted)") else Path(where)


def check_folder_in_place(folder: Path, identity: tuple[int, int], what: str, now: Path | None = None, *,
                          fix: str = "run it again") -> None:
    """Stop ``what`` (a command's words: "the evaluation") where ``folder`` is no longer the folder of ``identity``
    (device, inode) it was when the command opened it: moved or replaced (by a link, say) since, so that a step by
    its path would act on the folder there now. ``now``: where the folder is now, where known. ``fix``: the advice
    (a command that continues its work in the folder, the benchmark, says how to continue it).

    Raises:
        FolderMoved: naming the path and, where known, the folder's place now.
    """
    try:
        st = os.stat(folder)
        here = (st.st_dev, st.st_ino)
    except OSError:
        here = None
    if here == identity:
        return
    from srunit.errors import FolderMoved

    there = f"; it is now at {now}" if now is not None else ""
    raise FolderMoved(f"{folder} was moved or replaced while {what} wrote into it (the folder there now is not the one "
                      f"srunit opened{there}): {what} stopped without writing into {folder}; {fix}")


# Writing relative to an open folder needs these to take dir_fd (POSIX; not Windows).
# (os.replace takes dir_fd where os.rename does; the set names only rename.)
_DIR_FD = ({os.open, os.mkdir, os.rename, os.unlink, os.rmdir} <= os.supports_dir_fd and hasattr(os, "O_DIRECTORY")
           and os.scandir in os.supports_fd)


def _remove_tree_at(folder_fd: int, name: str) -> None:
    """Remove the folder ``name`` of the open folder ``folder_fd`` and all below it, relative to descriptors and
    never following a link (`shutil.rmtree` takes ``dir_fd`` only from Python 3.11)."""
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), dir_fd=folder_fd)
    try:
        for entry in list(os.scandir(fd)):
            if entry.is_dir(follow_symlinks=False):
                _remove_tree_at(fd, entry.name)
            else:
                os.unlink(entry.name, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=folder_fd)


def folder_writer(folder: str | os.PathLike[str] | FolderWriter) -> AbstractContextManager[FolderWriter]:
    """``folder`` opened once (`FolderWriter`, closed when the block ends), or the writer given (left open for the
    caller that opened it): what a function writing a folder takes, so a caller can hand it a folder it holds."""
    return nullcontext(folder) if isinstance(folder, FolderWriter) else FolderWriter(folder)


class FolderWriter:
    """Writes files below one output folder, opened once: every file is created relative to that open folder
    (``openat``), and every folder below it is entered without following a link, so moving the folder away
    and putting a link (to the input folder, say) in its place while a command writes can never send a file
    anywhere but into the folder that was opened. Each file is written atomically as by `write_bytes_atomic`.
    Where the system cannot write relative to a folder, the folder's identity (device, inode) is checked
    before each write instead.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self._fd: int | None = None  # first: `__del__` of a writer whose folder could not be made closes nothing
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if _DIR_FD:
            self._fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
            st = os.fstat(self._fd)
        else:
            st = os.stat(self.folder)
        self._identity = (st.st_dev, st.st_ino)

    def __str__(self) -> str:
        """The folder's path, as a message naming the writer should show it (not ``<...FolderWriter object at 0x..>``);
        a writer is no path (no ``__fspath__``): a path-based step must say ``writer.folder``."""
        return str(self.folder)

    def __repr__(self) -> str:
        return f"FolderWriter({str(self.folder)!r})"

    def _relative(self, path: str | os.PathLike[str]) -> Path:
        rel = Path(path)
        if rel.is_absolute() or rel.parts[:len(self.folder.parts)] == self.folder.parts:
            rel = rel.relative_to(self.folder)
        if not rel.parts or ".." in rel.parts:
            raise ValueError(f"{path} is not a file below {self.folder}")
        return rel

    def write_bytes(self, path: str | os.PathLike[str], data: bytes) -> None:
        """Write ``data`` to ``path`` (below the folder: relative to it, or the folder's path joined with it).

        Raises:
            DataError: a folder on the way is a symbolic link or a file; or (without ``openat``) the folder was
                moved or replaced since it was opened.
            OSError: the disk is full, or another failure to write, named with the path being written.
        """
        rel = self._relative(path)
        if self._fd is None:
            self.check_in_place("srunit")
            write_bytes_atomic(self.folder / rel, data)
            return
        self._write(rel, lambda f: f.write(data))

    def copy_file(self, src: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
        """Copy the file ``src`` (read by its path, streamed) to ``path`` (as `write_bytes`) as `shutil.copy2`
        does: its permission bits and times with it."""
        rel = self._relative(path)
        if self._fd is None:
            self.check_in_place("srunit")
            shutil.copy2(src, self.folder / rel)
            return

        def copy(out: Any) -> None:
            with open(src, "rb") as source:
                shutil.copyfileobj(source, out)
                st = os.fstat(source.fileno())
            out.flush()
            os.fchmod(out.fileno(), stat.S_IMODE(st.st_mode))
            os.utime(out.fileno(), ns=(st.st_atime_ns, st.st_mtime_ns))

        self._write(rel, copy)

    def _write(self, rel: Path, fill: Any) -> None:
        """Write the file ``rel`` atomically relative to the open folder, ``fill(file)`` writing its contents."""
        try:
            where, opened = self._step(rel)
            try:
                self._write_at(where, rel.parts[-1], fill)
            finally:
                for fd in opened:
                    os.close(fd)
        except OSError as err:
            self._raise_named(rel, err)

    def write_json(self, path: str | os.PathLike[str], data: Any) -> None:
        """Write ``data`` as `write_json_atomic` does, into the folder (see `write_bytes`)."""
        self.write_bytes(path, _json_bytes(data))

    def now_at(self) -> Path | None:
        """Where the opened folder is now (Linux's /proc/self/fd), or None where that cannot be told."""
        return descriptor_path(self._fd)

    @property
    def identity(self) -> tuple[int, int]:
        """(device, inode) of the folder opened, for a process that cannot share it (`check_folder_in_place`)."""
        return self._identity

    def check_in_place(self, what: str, fix: str = "run it again") -> None:
        """Stop ``what`` (a command's words: "the evaluation") where the folder's path no longer names the folder
        opened: it was moved or replaced (by a link, say) since, and a path-based step (a copy, a rename, a
        report naming the path) would act on the folder now there (`check_folder_in_place`, ``fix`` its advice)."""
        check_folder_in_place(self.folder, self._identity, what, self.now_at(), fix=fix)

    def _step(self, rel: Path) -> tuple[int, list[int]]:
        """The open folder holding ``rel`` (its parents entered without following a link, made where absent), and
        the descriptors opened for it (for the caller to close). Without ``openat``: the folder is re-checked."""
        opened: list[int] = []
        where = self._fd
        assert where is not None
        try:
            for part in rel.parts[:-1]:
                flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
                try:
                    where = os.open(part, flags, dir_fd=where)
                except FileNotFoundError:
                    os.mkdir(part, 0o777, dir_fd=where)
                    where = os.open(part, flags, dir_fd=where)
                opened.append(where)
        except BaseException:
            for fd in opened:
                os.close(fd)
            raise
        return where, opened

    def names(self) -> list[str]:
        """The names in the folder opened (wherever it is now)."""
        return os.listdir(self._fd if self._fd is not None else self.folder)

    def subfolder(self, path: str | os.PathLike[str]) -> FolderWriter:
        """A writer of the folder ``path`` below this one (made where absent), opened relative to this one without
        following a link: moving this folder away while it writes cannot redirect it either."""
        rel = self._relative(path)
        if self._fd is None:
            return FolderWriter(self.make_folder(rel))
        self.make_folder(rel)
        sub = FolderWriter.__new__(FolderWriter)
        sub._fd = None
        sub.folder = self.folder / rel
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)

        def open_at(where: int, name: str) -> None:
            sub._fd = os.open(name, flags, dir_fd=where)

        self._at(rel, open_at)
        st = os.fstat(sub._fd)  # type: ignore[arg-type]
        sub._identity = (st.st_dev, st.st_ino)
        return sub

    def make_folder(self, path: str | os.PathLike[str]) -> Path:
        """Make the folder ``path`` below the folder (and its parents), entered as `write_bytes` enters folders;
        returns its path (the folder's path joined with it)."""
        rel = self._relative(path)
        if self._fd is None:
            self.check_in_place("srunit")
            (self.folder / rel).mkdir(parents=True, exist_ok=True)
            return self.folder / rel
        self._at(rel, lambda where, name: os.mkdir(name, 0o777, dir_fd=where), exists_ok=True)
        return self.folder / rel

    def remove(self, path: str | os.PathLike[str]) -> None:
        """Remove the file or folder tree ``path`` below the folder, if there (a link is removed, never followed)."""
        rel = self._relative(path)
        if self._fd is None:
            self.check_in_place("srunit")
            target = self.folder / rel
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
            return

        def remove_at(where: int, name: str) -> None:
            try:
                st = os.lstat(name, dir_fd=where)
            except FileNotFoundError:
                return
            if stat.S_ISDIR(st.st_mode):
                _remove_tree_at(where, name)
            else:
                os.unlink(name, dir_fd=where)

        self._at(rel, remove_at)

    def replace_folder(self, src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        """Put the folder ``src`` in the place of ``dst`` (both below the folder, in one folder): ``dst`` is removed
        (`remove`), then ``src`` renamed onto it."""
        src_rel, dst_rel = self._relative(src), self._relative(dst)
        if src_rel.parent != dst_rel.parent:
            raise ValueError(f"{src} and {dst} are not in one folder")
        self.remove(dst_rel)
        if self._fd is None:
            (self.folder / src_rel).rename(self.folder / dst_rel)
            return
        self._at(src_rel, lambda where, name: os.rename(name, dst_rel.name, src_dir_fd=where, dst_dir_fd=where))

    def replace(self, src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        """Rename the file or folder ``src`` onto ``dst`` (both below the folder; the folders of ``dst`` made where
        absent) as `os.replace` does: atomically, a file at ``dst`` replaced, a folder there only where empty."""
        src_rel, dst_rel = self._relative(src), self._relative(dst)
        if self._fd is None:
            self.check_in_place("srunit")
            os.replace(self.folder / src_rel, self.folder / dst_rel)
            return
        opened: list[int] = []
        try:
            try:
                where, opened = self._step(src_rel)
                to, more = self._step(dst_rel)
                opened += more
            except OSError as err:
                self._raise_named(src_rel, err)
            os.replace(src_rel.parts[-1], dst_rel.parts[-1], src_dir_fd=where, dst_dir_fd=to)  # its error as is
        finally:
            for fd in opened:
                os.close(fd)

    def symlink(self, target: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
        """Make ``path`` (below the folder) a symbolic link to ``target``, which is not followed to make it."""
        rel = self._relative(path)
        if self._fd is None:
            self.check_in_place("srunit")
            os.symlink(target, self.folder / rel)
            return
        self._at(rel, lambda where, name: os.symlink(target, name, dir_fd=where))

    def _at(self, rel: Path, step: Any, *, exists_ok: bool = False) -> None:
        """Run ``step(folder_fd, name)`` on ``rel`` relative to the open folder, errors named as `write_bytes`'s."""
        try:
            where, opened = self._step(rel)
            try:
                step(where, rel.parts[-1])
            finally:
                for fd in opened:
                    os.close(fd)
        except FileExistsError:
            if not exists_ok:
                raise
        except OSError as err:
            self._raise_named(rel, err)

    def _raise_named(self, rel: Path, err: OSError) -> NoReturn:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            from srunit.errors import DataError

            raise DataError(f"{self.folder / rel}: a folder on its way below {self.folder} is a symbolic link or "
                            f"a file; srunit writes only into real folders it made or was given: remove it, or "
                            f"choose another output (nothing was written there)") from None
        raise OSError(err.errno, err.strerror, str(self.folder / rel)) from err

    @staticmethod
    def _write_at(folder_fd: int, name: str, fill: Any) -> None:
        tmp = f".{name}{TEMP_PREFIX}{secrets.token_hex(4)}.tmp"  # TEMP_NAME_EXTRA bytes longer than name
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(tmp, flags, FILE_MODE, dir_fd=folder_fd)
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), file_mode())
                fill(f)
            os.replace(tmp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=folder_fd)
            except OSError:
                pass
            raise

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
