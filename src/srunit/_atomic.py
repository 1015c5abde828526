"""Atomic file writes: a reader (a browser, a viewer polling a run folder, a second process) sees
either the previous file or the complete new one, never half a file, and a crash leaves the
previous file intact."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["FILE_MODE", "TEMP_NAME_EXTRA", "check_output_file", "write_bytes_atomic", "write_text_atomic",
           "write_json_atomic"]

# mkstemp creates 0600 files; results, reports and caches are meant to be shared like any other file.
FILE_MODE = 0o644
# The temporary name of ``write_bytes_atomic`` is ".NAME.XXXXXXXX.tmp": NAME plus this many bytes (mkstemp
# draws 8 characters); `srunit._outputs.check_name_lengths` checks names against the file system with it.
TEMP_NAME_EXTRA = len("..") + 8 + len(".tmp")


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
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: the folder {parent} is not writable for this user; choose another path")
    return path


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    Parent folders are created; the file gets mode ``FILE_MODE`` (0644). If anything fails, the
    temporary file is removed and an existing ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder: os.replace is atomic only within one file system.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)
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


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented JSON with a final newline, atomically (see ``write_bytes_atomic``)."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")
