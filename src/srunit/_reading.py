"""The one reader of the files srunit reads whole: every size is bounded before a byte is read.

A file given to srunit (a config, a label list, a search space, a run's records and logs, a study record, a
network file's header) is read through here. Before reading, the file is opened without blocking and
checked with ``fstat`` to be a regular file: a FIFO would block the command forever, a character device
(``/dev/zero``, ``/dev/urandom``, or a link to one) would be read without end. Its size is checked against
a limit the caller names (a constant of the format, never a number read from the file itself), and at most
that many bytes are read even if the file grows meanwhile. Text must be UTF-8; JSON may nest at most
`MAX_JSON_DEPTH` levels. Every failure is one line naming the file, as the caller's error class
(DataError, CheckpointError, ConfigError), never a traceback or a RecursionError.

Files read by other libraries (images by PIL, ``state.pt`` by torch, ONNX files) are first checked with
`check_regular_file`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from srunit.errors import DataError, shell_word

__all__ = ["MAX_CONFIG_BYTES", "MAX_IMAGE_BYTES", "MAX_JSON_DEPTH", "MAX_LOG_BYTES", "MAX_RECORD_BYTES",
           "check_regular_file", "file_digest", "json_lines", "open_regular", "parse_json", "path_kind", "read_bytes",
           "permission_fix", "read_json", "read_text", "folder_inside",
           "same_folder", "unreadable_folder"]

MAX_RECORD_BYTES = 16 * 2**20  # run.json, scores.json, a study record, a lock's holder, a label list: a few kB each
MAX_CONFIG_BYTES = 16 * 2**20  # a YAML config or search space: a few kB
MAX_LOG_BYTES = 2**30  # metrics.jsonl, history.jsonl: ~200 bytes a logged step, so millions of steps
MAX_IMAGE_BYTES = 2**30  # a sample grid or plot embedded in a report
MAX_JSON_DEPTH = 64  # srunit's records nest 5 levels (a confusion matrix in a scores record in a study record)

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))

ErrorClass = type[Exception]


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def path_kind(path: str | os.PathLike[str]) -> str:
    """What ``path`` is, for a message: "a folder", "a regular file", "a FIFO (named pipe)", "a character device"
    ... with "(it points to TARGET)" for a symbolic link; "missing" where nothing is there (or a link to nothing)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "missing"
    kind = "a regular file" if stat.S_ISREG(mode) else _kind(mode)
    return kind + (f" (it points to {os.path.realpath(path)})" if os.path.islink(path) else "")


def link_to_nothing(path: str | os.PathLike[str]) -> str | None:
    """"PATH is a link to TARGET, which does not exist" where ``path`` is a symbolic link that leads to nothing (what it
    points to was moved or deleted); else None."""
    if not os.path.islink(path) or os.path.exists(path):
        return None
    return f"{path} is a link to {os.readlink(path)}, which does not exist"


def check_linked_files(folder: str | os.PathLike[str], names: Sequence[str], what: str, *,
                       error: ErrorClass = DataError) -> None:
    """``error`` where one of the files ``names`` of ``folder`` (which make it ``what``: "a demo folder") is a link to
    nothing. A copy made of links (``cp -as``) whose original was then moved was called "not a demo folder" or
    "holds neither metrics.jsonl nor ...", where its files are there, as links to nothing."""
    for name in names:
        said = link_to_nothing(Path(folder) / name)
        if said is not None:
            raise error(f"{said}, so {folder} is not read as {what}: the files its links point to were moved or "
                        f"deleted (a copy made with cp -s or cp -as holds only links); put them back where the links "
                        f"point, or make {folder} again from where they are now (cp -a copies the files themselves)")


def same_folder(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether ``a`` and ``b`` are one existing folder, compared by identity: a link or another spelling counts."""
    first, second = Path(a).expanduser(), Path(b).expanduser()
    try:
        return first.is_dir() and second.is_dir() and os.path.samefile(first, second)
    except OSError:
        return False


def folder_inside(inner: str | os.PathLike[str], outer: str | os.PathLike[str]) -> bool:
    """Whether the existing folder ``inner`` lies below the existing folder ``outer`` (their links followed), so a
    recursive scan of ``outer`` lists the files of ``inner`` too; one folder is not inside itself (`same_folder`)."""
    first, second = Path(inner).expanduser(), Path(outer).expanduser()
    if not (first.is_dir() and second.is_dir()) or same_folder(first, second):
        return False
    return Path(os.path.realpath(first)).is_relative_to(os.path.realpath(second))


def _below_a_file(path: str | os.PathLike[str]) -> str:
    """Why ``path`` cannot be opened where opening it failed with ENOTDIR: the file that lies where its path (its
    links followed) needs a folder."""
    real = Path(os.path.realpath(path))
    blocker = next((p for p in reversed(real.parents) if p.exists() and not p.is_dir()), None)
    through = f" (it points to {real})" if os.path.islink(path) else ""
    if blocker is None:
        return f"{through} cannot be opened: a part of its path is a file, not a folder"
    return f"{through} lies below {blocker}, which is a file, not a folder"


def open_regular(path: str | os.PathLike[str], what: str, *, error: ErrorClass = DataError, fix: str = "",
                 follow: bool = True) -> int:
    """A read-only descriptor of ``path`` once ``fstat`` shows a regular file; the caller closes it.

    ``what`` names the file in messages ("the run record", "--reference"); ``fix`` is the advice appended.
    ``follow=False`` refuses a symbolic link at ``path`` itself (O_NOFOLLOW).

    Raises:
        error: the file is missing, unreadable, a symbolic link (``follow=False``), or not a regular file
            (a folder, a FIFO, a device, a socket, or a link to one).
    """
    advice = f"; {fix}" if fix else ""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)  # O_NONBLOCK: opening a FIFO with no writer returns at once
    except FileNotFoundError:
        to = f" is a symbolic link to {os.readlink(path)}, which" if os.path.islink(path) else ""
        raise error(f"{what} {path}{to} does not exist{advice}") from None
    except OSError as err:
        if err.errno == errno.ELOOP and not follow:
            raise error(f"{what} {path} is a symbolic link, which srunit does not follow here{advice}") from None
        if err.errno == errno.EISDIR:
            raise error(f"{what} {path} is a folder, not a file{advice}") from None
        if err.errno == errno.ENOTDIR:  # the caller's advice is for the file's content: this is its path
            raise error(f"{what} {path}{_below_a_file(path)}; give the path of a file") from None
        if err.errno == errno.EACCES:  # the caller's advice is for a damaged file: "move the file aside" lost it
            raise error(f"cannot read {what} {path}: {err.strerror}; {permission_fix(Path(path))}") from None
        raise error(f"cannot read {what} {path}: {err.strerror or err}{advice}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        target = f" (it points to {os.path.realpath(path)})" if os.path.islink(path) else ""
        raise error(f"{what} {path} is {_kind(mode)}{target}, not a regular file; srunit reads only regular files "
                    f"(a pipe or a device would block or never end){advice}")
    return fd


def unreadable_folder(path: Path) -> Path | None:
    """The nearest folder above ``path`` that this user cannot list or enter (None where each can be): what a
    permission error on a path inside it is about."""
    for folder in path.parents:
        if os.path.isdir(folder) and not os.access(folder, os.R_OK | os.X_OK):
            return folder
    return None


def permission_fix(path: Path) -> str:
    """The chmod that lets this user read ``path``: the folder above it that it cannot enter, else the file."""
    folder = unreadable_folder(path)
    if folder is not None:
        return f"the folder {folder} cannot be read: give yourself read permission (chmod u+rx {shell_word(folder)})"
    return f"give yourself read permission (chmod u+r {shell_word(path)})"


def check_regular_file(path: str | os.PathLike[str], what: str, *, error: ErrorClass = DataError,
                       fix: str = "") -> Path:
    """``path`` as a Path once it is a regular file (links followed), for files another library reads.

    Raises:
        error: as `open_regular`.
    """
    os.close(open_regular(path, what, error=error, fix=fix))
    return Path(path)


def _read_fd(fd: int, limit: int) -> bytes:
    chunks, total = [], 0
    while total <= limit:
        chunk = os.read(fd, min(limit + 1 - total, 2**24))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def read_bytes(path: str | os.PathLike[str], what: str, *, limit: int, error: ErrorClass = DataError,
               fix: str = "", follow: bool = True) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    Raises:
        error: as `open_regular`, or the file holds more than ``limit`` bytes (checked before reading, and
            again while reading a file that grows).
    """
    fd = open_regular(path, what, error=error, fix=fix, follow=follow)
    try:
        size = os.fstat(fd).st_size
        data = b"" if size > limit else _read_fd(fd, limit)
    except OSError as err:
        raise error(f"cannot read {what} {path}: {err.strerror or err}{'; ' + fix if fix else ''}") from None
    finally:
        os.close(fd)
    if size > limit or len(data) > limit:
        raise error(f"{what} {path} is {max(size, len(data)):,} bytes or more, more than the {limit:,} such a file "
                    f"can hold{'; ' + fix if fix else ''}")
    return data


def file_digest(path: str | os.PathLike[str], what: str, *, error: ErrorClass = DataError, fix: str = "") -> str:
    """sha256 (hex) of the regular file ``path``, read in blocks of 1 MiB: memory stays bounded whatever the size.

    Raises:
        error: as `open_regular`, or the file cannot be read.
    """
    fd = open_regular(path, what, error=error, fix=fix)
    total = hashlib.sha256()
    try:
        while block := os.read(fd, 2**20):
            total.update(block)
    except OSError as err:
        raise error(f"cannot read {what} {path}: {err.strerror or err}{'; ' + fix if fix else ''}") from None
    finally:
        os.close(fd)
    return total.hexdigest()


def _decode(data: bytes, path: str | os.PathLike[str], what: str, error: ErrorClass, fix: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        advice = f"; {fix}" if fix else ""
        raise error(f"{what} {path} is not UTF-8 text (byte 0x{data[err.start]:02x} on line {line}){advice}") from None


def read_text(path: str | os.PathLike[str], what: str, *, limit: int, error: ErrorClass = DataError,
              fix: str = "", follow: bool = True) -> str:
    """The UTF-8 text of the regular file ``path`` (see `read_bytes`); invalid bytes raise ``error`` with the line."""
    return _decode(read_bytes(path, what, limit=limit, error=error, fix=fix, follow=follow), path, what, error, fix)


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return False


def _loads(text: str) -> tuple[Any, str | None]:
    """(value, None), or (None, why it is refused): invalid JSON or nesting deeper than `MAX_JSON_DEPTH`."""
    try:
        value = json.loads(text)
    except RecursionError:
        return None, _DEEP
    except ValueError as err:  # JSONDecodeError, or an integer of more digits than Python converts
        return None, f"is not valid JSON ({str(err)[:200]})"
    return (None, _DEEP) if _depth_exceeds(value, MAX_JSON_DEPTH) else (value, None)


_DEEP = (f"nests JSON more than {MAX_JSON_DEPTH} levels deep; no file of srunit nests more than a few, so it is "
         f"damaged or not one srunit wrote")


def parse_json(text: str | bytes, origin: str, *, error: ErrorClass = DataError, fix: str = "") -> Any:
    """``text`` parsed as JSON; ``error`` naming ``origin`` (the file, the line) for invalid JSON, bytes that are
    not UTF-8, a number of more digits than Python converts, or nesting deeper than `MAX_JSON_DEPTH`."""
    advice = f"; {fix}" if fix else ""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise error(f"{origin} is not UTF-8 text (byte 0x{text[err.start]:02x} at offset {err.start}){advice}"
                        ) from None
    value, problem = _loads(text)
    if problem:
        raise error(f"{origin} {problem}{advice}")
    return value


def read_json(path: str | os.PathLike[str], what: str, *, limit: int = MAX_RECORD_BYTES,
              error: ErrorClass = DataError, fix: str = "", follow: bool = True) -> Any:
    """The JSON value in the regular file ``path`` (see `read_bytes` and `parse_json`)."""
    text = read_text(path, what, limit=limit, error=error, fix=fix, follow=follow)
    return parse_json(text, f"{what} {path}", error=error, fix=fix)


def json_lines(path: str | os.PathLike[str], what: str, *, limit: int = MAX_LOG_BYTES,
               error: ErrorClass = DataError, fix: str = "") -> Iterator[tuple[str, Any]]:
    """(line, value) for each line of the JSON-lines file ``path``; value is None for a line that is not valid
    JSON (the last line of a log cut short by a kill). The file must be UTF-8 and within ``limit`` bytes, and
    a line nested deeper than `MAX_JSON_DEPTH` raises ``error`` naming the file and the line."""
    text = read_text(path, what, limit=limit, error=error, fix=fix)
    # One line at a time: a log of a million lines held as a list of lines beside the text cost twice its size.
    start, number = 0, 0
    while start < len(text):
        end = text.find("\n", start)  # only a newline ends a line (not the other line breaks str.splitlines knows)
        end = len(text) if end < 0 else end + 1
        line, start, number = text[start:end], end, number + 1
        value, problem = _loads(line)
        if problem == _DEEP:
            raise error(f"{what} {path} (line {number}) {problem}{'; ' + fix if fix else ''}")
        yield line, value
