"""The report's matplotlib figures: per-class IoU bars and training loss curves, as inline PNGs."""

from __future__ import annotations

import html
import io
import logging
import math
import os
import sys
from typing import Any

import numpy as np

from srunit.report.markup import esc, img_tag
from srunit.report.runs import Bench, Run, runs_of

__all__ = ["import_matplotlib", "iou_figure", "iou_section", "loss_curves", "loss_section", "mean_curve",
           "flips_section"]

log = logging.getLogger(__name__)

NOT_LOSSES = frozenset({"step", "images_per_s", "lr"})
# Panels of loss curves in one report: srunit's methods log at most a dozen losses; a log of 3,000 keys made
# `srunit report` draw 3,000 panels (past 120 s and 2.8 GB). The series logged first are drawn; the rest are named.
MAX_LOSS_PANELS = 16


def import_matplotlib() -> Any:
    """``import matplotlib``, past a ``$MPLBACKEND`` that names no backend: matplotlib refuses one at import with a
    ValueError, and `srunit report` ended in that traceback. The variable is set aside for the import and then
    given to matplotlib as its import would (a valid value is kept; another is ignored with a warning: srunit
    draws into files with Agg whatever it says); the environment is left as it was."""
    if "matplotlib" in sys.modules:
        return sys.modules["matplotlib"]
    saved = os.environ.pop("MPLBACKEND", None)
    try:
        import matplotlib
    finally:
        if saved is not None:
            os.environ["MPLBACKEND"] = saved
    if saved:
        try:
            matplotlib.rcParams["backend"] = saved
        except ValueError:
            log.warning("ignoring $MPLBACKEND=%s, which names no matplotlib backend; srunit draws its figures "
                        "with Agg", saved)
    return matplotlib


def _new_figure(width: float, height: float) -> Any:
    # Imported here: matplotlib takes most of a second to import and only the report needs it.
    import_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


FIGURE_DPI = 100
MAX_HEAT_MAP_PIXELS = 64 * 2**20  # about 256 MB of RGBA: 45 heat maps of 19 classes (a benchmark of every preset)


def _figure_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    return buf.getvalue()


def _line_style(i: int) -> dict[str, str]:
    """Ten colours, then the same colours dashed, dotted, ...: distinct for a bench of many runs."""
    return {"color": f"C{i % 10}", "linestyle": ("-", "--", ":", "-.")[i // 10 % 4]}


def _per_class_iou(scores: dict[str, Any] | None) -> dict[int, float]:
    per_class = ((scores or {}).get("segmentation") or {}).get("per_class") or []
    return {int(c["id"]): math.nan if c.get("iou") is None else float(c["iou"]) for c in per_class}


def _mean_iou_by_class(runs: list[Run]) -> dict[int, float]:
    tables = [_per_class_iou(r.scores) for r in runs]
    means = {}
    for cid in sorted(set().union(*tables)):
        values = [t[cid] for t in tables if not math.isnan(t.get(cid, math.nan))]
        means[cid] = sum(values) / len(values) if values else math.nan
    return means


def _class_names(runs: list[Run]) -> dict[int, str]:
    names: dict[int, str] = {}
    for r in runs:
        record = r.scores or {}
        names.update(enumerate(record.get("class_names") or []))
        names.update({int(c["id"]): c["name"] for c in (record.get("segmentation") or {}).get("per_class") or []
                      if c.get("name")})
    return names


def _plain(text: object) -> str:
    """User text (run names, metric keys, class names) shown literally: matplotlib would read a pair of
    "$" as mathtext and fail on what is not valid TeX."""
    return str(text).replace("$", r"\$")


def _groups(item: Run | Bench, upper_bound: bool = False) -> list[tuple[str, list[Run]]]:
    """(label, runs) of what a figure shows for ``item``: a run by itself, or each benchmark row with its
    seeds' runs (and, with ``upper_bound``, the segmenter's score on the ground truth)."""
    if isinstance(item, Run):
        return [(item.label, [item])]
    upper = [(item.upper_run.label, [item.upper_run])] if upper_bound and item.upper_run else []
    return [(row.label, row.runs) for row in item.rows] + upper


ZERO_STUB = 1.0  # height (IoU %) of the stub drawn for an IoU of 0, which a bar of height 0 would hide


def iou_section(items: list[Run | Bench]) -> str:
    """The per-class IoU bar chart: a group per class, a bar per run or bench row ("" without scores)."""
    fig = iou_figure(items)
    if fig is None:
        return ""
    note = ("<p class=\"note\">One group per class, one bar per run (a benchmark row averages its runs). An IoU of 0 "
            "is a short hatched stub labelled 0.0; a missing bar: the class is absent from that run's labels.</p>")
    return "<h2>Per-class IoU</h2>" + note + img_tag(_figure_png(fig), "per-class IoU")


def iou_figure(items: list[Run | Bench]) -> Any:
    """The matplotlib figure of `iou_section` (None without scores). A class absent from a run's labels has no
    bar; an IoU of 0 (present, never hit) gets a hatched stub and the label "0.0", so the two never look alike."""
    series: list[tuple[str, dict[int, float]]] = []
    for item in items:
        for label, runs in _groups(item, upper_bound=True):
            values = _mean_iou_by_class(runs)
            if values:
                series.append((label, values))
    if not series:
        return None
    names = _class_names([r for item in items for r in runs_of(item)])
    ids = sorted(set().union(*(values for _, values in series)))
    width = 0.8 / len(series)
    fig = _new_figure(min(30.0, max(6.0, 1.0 + len(ids) * (0.25 + 0.1 * len(series)))), 3.6)
    ax = fig.subplots()
    x = np.arange(len(ids))
    for i, (label, values) in enumerate(series):
        xs = x + (i - (len(series) - 1) / 2) * width
        heights = [100 * values.get(c, math.nan) for c in ids]
        colour = _line_style(i)["color"]
        ax.bar(xs, heights, width, label=_plain(label), color=colour, hatch=None if i < 10 else "//")
        zeros = [j for j, h in enumerate(heights) if h == 0]
        if zeros:
            ax.bar(xs[zeros], [ZERO_STUB] * len(zeros), width, color="white", edgecolor=colour, hatch="////",
                   linewidth=0.8)
            for j in zeros:
                ax.text(xs[j], ZERO_STUB + 0.5, "0.0", ha="center", va="bottom", fontsize=7, color=colour)
    ax.set_xticks(x, [_plain(names.get(c, f"class {c}")) for c in ids], rotation=45, ha="right")
    ax.set_ylabel("IoU %")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return fig


def loss_curves(items: list[Run | Bench]) -> list[tuple[str, list[Run]]]:
    """What the loss panels draw: a line per run folder, and a line per benchmark row (its seeds
    averaged, with their range as a band), each with the runs behind it; rows without metrics left out."""
    curves: list[tuple[str, list[Run]]] = []
    for item in items:
        curves += [(label, [r for r in runs if r.metrics]) for label, runs in _groups(item)
                   if any(r.metrics for r in runs)]
    return curves


def mean_curve(runs: list[Run], key: str) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    """(steps, mean, min, max) of ``key`` over ``runs`` at the steps where every run logged it."""
    tables = [{step: values[key] for step, values in r.metrics.items() if key in values} for r in runs]
    steps = sorted(set.intersection(*(set(t) for t in tables))) if tables else []
    if not steps:
        return [], np.empty(0), np.empty(0), np.empty(0)
    values = np.array([[t[step] for step in steps] for t in tables], dtype=float)
    return steps, values.mean(0), values.min(0), values.max(0)


def loss_section(items: list[Run | Bench]) -> str:
    """One loss-curve panel per logged loss, a line per run or benchmark row ("" without metrics)."""
    curves = loss_curves(items)
    keys = list(dict.fromkeys(k for _, runs in curves for r in runs for values in r.metrics.values() for k in values
                              if k not in NOT_LOSSES))
    if not keys:
        return ""
    left_out = keys[MAX_LOSS_PANELS:]
    keys = keys[:MAX_LOSS_PANELS]
    ncols = min(3, len(keys))
    nrows = -(-len(keys) // ncols)
    fig = _new_figure(4.0 * ncols, 2.6 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    handles: dict[int, Any] = {}  # curve index -> its line; labels of different curves may coincide
    for ax, key in zip(axes, keys):
        for i, (_, runs) in enumerate(curves):
            logged = [r for r in runs if any(key in v for v in r.metrics.values())]
            steps, mean, low, high = mean_curve(logged, key)
            if steps:
                style = _line_style(i)
                lines = ax.plot(steps, mean, linewidth=1.2, marker="o" if len(steps) == 1 else None, **style)
                if len(logged) > 1:  # a band over the seeds that logged this loss
                    ax.fill_between(steps, low, high, color=style["color"], alpha=0.12, linewidth=0)
                handles.setdefault(i, lines[0])
        ax.set_title(_plain(key))
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.legend(list(handles.values()), [_plain(curves[i][0]) for i in handles], loc="upper center",
               bbox_to_anchor=(0.5, 0.0), ncol=min(4, len(handles)), fontsize="small")
    note = ("<p class=\"note\">A line per run; a benchmark row is the mean over its seeds, the band their range."
            "</p>" if any(len(runs) > 1 for _, runs in curves) else "")
    if left_out:
        shown = ", ".join(str(k) for k in left_out[:5]) + (", ..." if len(left_out) > 5 else "")
        note += (f"<p class=\"note\">The first {MAX_LOSS_PANELS} logged series are drawn; {len(left_out)} more are "
                 f"left out ({html.escape(shown)}).</p>")
    return "<h2>Training losses</h2>" + note + img_tag(_figure_png(fig), "loss curves")


def _flip_matrix(scores: dict[str, Any] | None) -> np.ndarray | None:
    """A run's flip matrix (N, N + 1) from its evaluation record (None without one)."""
    flips = ((scores or {}).get("segmentation") or {}).get("flips") or {}
    matrix = flips.get("matrix")
    if not isinstance(matrix, list) or not matrix:
        return None
    try:
        arr = np.array([[math.nan if v is None else float(v) for v in row] for row in matrix], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.ndim == 2 and arr.shape[1] == arr.shape[0] + 1 else None


def _mean_flip_matrix(runs: list[Run]) -> np.ndarray | None:
    matrices = [m for r in runs if (m := _flip_matrix(r.scores)) is not None]
    if not matrices or any(m.shape != matrices[0].shape for m in matrices):
        return None
    stack = np.stack(matrices)
    counts = np.isfinite(stack).sum(0)
    with np.errstate(invalid="ignore"):  # a class no run's labels hold stays NaN
        return np.where(counts > 0, np.nansum(stack, 0) / np.maximum(counts, 1), np.nan)


def flips_section(items: list[Run | Bench]) -> str:
    """Per-class flip-rate bars (a bar per run or benchmark row) and each one's flip matrix as a heat map: where
    the pixels of every source class went ("" without flip records)."""
    series: list[tuple[str, np.ndarray]] = []
    for item in items:
        for label, runs in _groups(item):
            matrix = _mean_flip_matrix(runs)
            if matrix is not None:
                series.append((label, matrix))
    if not series:
        return ""
    n = series[0][1].shape[0]
    # One figure shows one class set: a run scored with other classes was left out of it without a word.
    other = [label for label, m in series if m.shape[0] != n]
    series = [(label, m) for label, m in series if m.shape[0] == n]
    notes = (f"<p class=\"note\">Not shown here: {esc(', '.join(other))} (scored with other classes than the "
             f"{n} of {esc(series[0][0])}); give runs scored on the same classes to one report.</p>" if other else "")
    names = _class_names([r for item in items for r in runs_of(item)])
    labels = [_plain(names.get(c, f"class {c}")) for c in range(n)]
    # Bars: the share of each class's pixels that the segmenter gave another class (none of the classes apart).
    fig = _new_figure(min(30.0, max(6.0, 1.0 + n * (0.25 + 0.1 * len(series)))), 3.4)
    ax = fig.subplots()
    width = 0.8 / len(series)
    x = np.arange(n)
    for i, (label, m) in enumerate(series):
        flipped = 100 * (1.0 - np.diag(m[:, :n]) - m[:, n])
        ax.bar(x + (i - (len(series) - 1) / 2) * width, flipped, width, label=_plain(label),
               color=_line_style(i)["color"], hatch=None if i < 10 else "//")
    ax.set_xticks(x, labels, rotation=45, ha="right")
    ax.set_ylabel("flipped %")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    bars = img_tag(_figure_png(fig), "per-class flip rate")
    synthscapes = any((r.scores or {}).get("benchmark") == "synthscapes" for item in items for r in runs_of(item))
    note = ("<p class=\"note\">A pixel flipped when the segmenter gives its translation another class than its "
            "source label (pixels it gives none of the classes"
            + (", such as the SynthScapes scorer's <em>not rendered</em> where the translation still looks like "
               "the label map," if synthscapes else "")
            + " are counted apart, in the last column). "
            "Bars: the share of each class's pixels that flipped, a bar per run (a benchmark row averages its "
            "runs). Heat maps: row = source class, column = where its pixels went, in percent of the row; "
            "the diagonal is what was kept.</p>")
    # Heat maps: row = source class, column = the segmenter's class on the translation (+ none of the classes).
    ncols = min(3, len(series))
    nrows = -(-len(series) // ncols)
    side = 0.42 * (n + 1) + 1.6
    pixels = round(side * ncols * FIGURE_DPI) * round(side * nrows * FIGURE_DPI)
    if pixels > MAX_HEAT_MAP_PIXELS:  # 1,600 classes drew a 67,000-pixel square: 18 GB, and the process was killed
        return ("<h2>Semantic flips</h2>" + note + notes + bars
                + f"<p class=\"note\">The flip matrices of {n} classes ({len(series)} of them) are not drawn: the "
                  f"figure would be {pixels:,} pixels. Each run's matrix is in its <code>eval/scores.json</code> "
                  f"(<code>segmentation.flips.matrix</code>).</p>")
    fig = _new_figure(side * ncols, side * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (label, m) in zip(axes, series):
        shown = np.where(np.isfinite(m), 100 * m, np.nan)
        image = ax.imshow(shown, vmin=0, vmax=100, cmap="magma_r")
        for (r, c), v in np.ndenumerate(shown):
            if np.isfinite(v) and v >= 0.5:
                ax.text(c, r, f"{v:.0f}", ha="center", va="center", fontsize=6,
                        color="white" if v > 55 else "black")
        ax.set_xticks(range(n + 1), [*labels, "no class"], rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(n), labels, fontsize=7)
        ax.set_title(_plain(label), fontsize=8)
        ax.set_xlabel("segmented as", fontsize=7)
        ax.set_ylabel("source class", fontsize=7)
    for ax in axes[len(series):]:
        ax.set_visible(False)
    fig.colorbar(image, ax=list(axes[:len(series)]), shrink=0.6, label="% of the source class")
    return "<h2>Semantic flips</h2>" + note + notes + bars + img_tag(_figure_png(fig), "flip matrices")
