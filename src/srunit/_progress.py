"""The one maker of srunit's progress bars for work on a number of items (images translated or scored)."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

__all__ = ["progress_bar", "stderr_is_terminal"]


def progress_bar(total: int, unit: str, show: bool) -> tqdm:
    """A bar of ``total`` ``unit``s done, with the rate and the time left, on standard error where ``show`` and
    standard error is a terminal (a log file or a pipe gets no bar lines); erased when done. Use it as a context
    manager and call ``update(n)``."""
    return tqdm(total=total, unit=unit, dynamic_ncols=True, leave=False, disable=not (show and stderr_is_terminal()))


def stderr_is_terminal() -> bool:
    """Whether standard error is a terminal (where a progress bar goes); False where Python has no standard error
    (None: closed when it started, or a host without one, as pythonw) or it was closed."""
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except ValueError:  # closed
        return False
