"""Optuna's plots of a study, as PNG files in the tuning folder (``OUT/plots/``) for the report and the docs."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from srunit._atomic import write_bytes_atomic

__all__ = ["PLOTS_DIR", "write_study_plots"]

log = logging.getLogger(__name__)

PLOTS_DIR = "plots"

# name -> (Optuna's matplotlib function, the fewest finished trials it needs, what it shows)
PLOTS: dict[str, tuple[str, int, str]] = {
    "history": ("plot_optimization_history", 1, "the objective of every finished trial and the best so far"),
    "slice": ("plot_slice", 1, "the objective against each parameter"),
    "importances": ("plot_param_importances", 3, "how much of the objective's variance each parameter explains "
                    "(fANOVA)"),
    "parallel": ("plot_parallel_coordinate", 2, "every trial's parameters and objective as one line"),
}


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """The logger ``logger`` at WARNING while the block runs."""
    target = logging.getLogger(logger)
    saved = target.level
    target.setLevel(logging.WARNING)
    try:
        yield
    finally:
        target.setLevel(saved)


def write_study_plots(study: Any, out: Path, objective: str = "mean_iou") -> dict[str, str]:
    """Write the plots the study has enough finished trials for into ``out/plots``; returns name -> file.

    A plot Optuna cannot draw (too few trials, a single parameter for the importances) is left out with a
    log line; matplotlib's Agg backend is used, so no display is needed. The objective's axis is named by
    ``objective`` and its unit: Optuna plots the stored fraction (0.041) that the tables show as 4.10 %, and a
    rescaled target would drop its best-value line.
    """
    from srunit.eval.records import in_percent
    from srunit.report.plots import import_matplotlib

    import_matplotlib().use("Agg", force=False)
    import matplotlib.pyplot as plt
    import optuna
    from optuna.trial import TrialState

    finished = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    written: dict[str, str] = {}
    folder = Path(out) / PLOTS_DIR
    for name, (function, least, _) in PLOTS.items():
        if finished < least:
            continue
        try:
            with warnings.catch_warnings(), _quiet("matplotlib.category"):
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                # matplotlib.category logs at INFO that the layer choices ("none", "0" ..) plot as categories
                name_of_target = f"{objective} (a fraction: 0.05 is 5%)" if in_percent(objective) else objective
                ax = getattr(optuna.visualization.matplotlib, function)(study, target_name=name_of_target)
            figure = (ax.flat[0] if hasattr(ax, "flat") else ax).get_figure()
            figure.set_size_inches(max(6.0, figure.get_size_inches()[0]), max(4.0, figure.get_size_inches()[1]))
            folder.mkdir(parents=True, exist_ok=True)
            import io

            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
            plt.close(figure)
            write_bytes_atomic(folder / f"{name}.png", buffer.getvalue())
            written[name] = f"{PLOTS_DIR}/{name}.png"
        except (ValueError, RuntimeError, ZeroDivisionError) as e:  # e.g. importances of a single parameter
            log.info("study plot %s left out: %s", name, e)
    return written
