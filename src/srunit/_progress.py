"""The one maker of srunit's progress bars for work on a number of items (images translated or scored)."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


def progress_bar(total: int, unit: str, show: bool) -> tqdm:
    """A bar of ``total`` ``unit``s done, with the rate and the time left, on standard error where ``show`` and
    standard error is a terminal (a log file or a pipe gets no bar lines); erased when done. Use it as a context
    manager and call ``update(n)``."""
    return tqdm(total=total, unit=unit, dynamic_ncols=True, leave=False, disable=not (show and sys.stderr.isatty()))
