"""Output folders of the dataset tools: srunit never writes into a folder that already holds files."""

from __future__ import annotations

from pathlib import Path

from srunit.errors import DataError

__all__ = ["require_empty_output"]


def require_empty_output(out: Path, option: str = "--out") -> None:
    """Refuse an output folder that exists and is not empty (srunit never overwrites user files).

    Raises:
        DataError: ``out`` is a file or a non-empty folder.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{option} {out} already exists and is not an empty folder; srunit never overwrites "
                        f"files, so pass a new folder or empty this one yourself")
