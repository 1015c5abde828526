"""A self-contained HTML report of training runs and benchmarks.

`build_report` reads run folders (``metrics.jsonl`` from the trainer, ``eval/scores.json`` from the
evaluation) and bench folders (``summary.json``) and writes one HTML file with inline CSS in which
every image is a base64 PNG data URI, so the file can be mailed or archived on its own. It shows the
scores tables (paper Table 1 style), per-class IoU bars, loss curves and image grids in which the
pixels whose segmentation class flipped under translation are highlighted.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

import srunit
from srunit.data.images import load_rgb, scan_images
from srunit.data.split import load_label_map
from srunit.errors import ConfigError, DataError

__all__ = [
    "Run", "BenchRow", "Bench", "load_metrics", "load_run", "load_bench", "flip_mask", "highlight_flips",
    "render_report", "build_report",
]

EVAL_FORMAT = "srunit-eval/1"
BENCH_FORMAT = "srunit-bench/1"
NOT_LOSSES = frozenset({"step", "images_per_s", "lr"})
SEG_KEYS = ("pixel_accuracy", "class_accuracy", "mean_iou")
HEADINGS = {"pixel_accuracy": "pixAcc %", "class_accuracy": "clsAcc %", "mean_iou": "mIoU %", "dist": "Dist"}
FLIP_COLOUR = (255, 0, 255)
MIN_CELL_WIDTH = 128  # tiny benchmark images are upscaled (nearest neighbour) to at least this width
EXPECTED = ("pass a run folder (with metrics.jsonl and/or eval/scores.json) or a bench folder (with "
            "summary.json)")


@dataclass
class Run:
    """One run folder. ``metrics``: step -> {name: value}, sorted by step (empty without
    metrics.jsonl); ``scores``: the eval/scores.json record, or None."""

    path: Path
    label: str
    method: str | None
    metrics: dict[int, dict[str, float]]
    scores: dict[str, Any] | None

    @property
    def steps(self) -> int | None:
        return max(self.metrics) if self.metrics else None


@dataclass
class BenchRow:
    """One method x condition row of a bench summary; ``mean``/``std``: metric -> value or None."""

    method: str
    condition: str
    n: int
    mean: dict[str, Any]
    std: dict[str, Any]
    runs: list[Run]

    @property
    def label(self) -> str:
        return f"{self.method} / {self.condition}" if self.condition else self.method


@dataclass
class Bench:
    """A bench folder: its summary.json, the runs of each row, and the upper-bound record."""

    path: Path
    summary: dict[str, Any]
    rows: list[BenchRow]
    upper_bound: dict[str, Any] | None
    upper_run: Run | None

    @property
    def runs(self) -> list[Run]:
        return [r for row in self.rows for r in row.runs] + ([self.upper_run] if self.upper_run else [])


# --------------------------------------------------------------------------- reading


def load_metrics(path: Path) -> dict[int, dict[str, float]]:
    """Read a trainer's metrics.jsonl into step -> {name: value}, sorted by step.

    A resumed run appends to the file, so a step may appear more than once: the last line wins.

    Raises:
        DataError: a line is not a JSON object with an integer "step" (names the file and line).
    """
    records: dict[int, dict[str, float]] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path} line {number} is not valid JSON ({e}); delete the damaged line") from e
            if not isinstance(record, dict) or isinstance(record.get("step"), bool) \
                    or not isinstance(record.get("step"), int):
                raise DataError(f"{path} line {number} must be a JSON object with an integer \"step\", got "
                                f"{line.strip()[:80]!r}; delete the damaged line")
            step = record.pop("step")
            records[step] = {k: float(v) for k, v in record.items()
                             if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return dict(sorted(records.items()))


def _read_json(path: Path, expected_format: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read {path} ({type(e).__name__}: {e}); rewrite it with the command that "
                        f"made it") from e
    if not isinstance(data, dict):
        raise DataError(f"{path} must hold a JSON object, got {type(data).__name__}")
    found = data.get("format", expected_format)
    if found != expected_format:
        raise DataError(f"{path} has format {found!r} but this srunit reads {expected_format!r}; rewrite it "
                        f"with this version of srunit")
    return data


def _config_method(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise DataError(f"cannot read {path} ({e}); restore the config written by `srunit train`") from e
    method = config.get("method") if isinstance(config, dict) else None
    return str(method["name"]) if isinstance(method, dict) and "name" in method else None


def load_run(path: Path, default_label: str | None = None) -> Run:
    """Read a run folder. The label is the eval record's, else ``default_label``, else the folder name;
    the method is the eval record's, else config.yaml's ``method.name``.

    Raises:
        DataError: the folder has neither metrics.jsonl nor eval/scores.json, or one is unreadable.
    """
    path = Path(path)
    metrics_file, scores_file = path / "metrics.jsonl", path / "eval" / "scores.json"
    if not metrics_file.is_file() and not scores_file.is_file():
        raise DataError(f"{path} holds neither metrics.jsonl nor eval/scores.json nor summary.json; {EXPECTED}")
    metrics = load_metrics(metrics_file) if metrics_file.is_file() else {}
    scores = _read_json(scores_file, EVAL_FORMAT) if scores_file.is_file() else None
    record = scores or {}
    method = record.get("method") or _config_method(path / "config.yaml")
    label = record.get("label") or default_label or path.name
    return Run(path, str(label), None if method is None else str(method), metrics, scores)


def load_bench(path: Path) -> Bench:
    """Read a bench folder's summary.json and the run folders its rows and upper bound name.

    Raises:
        DataError: summary.json is unreadable or malformed, or a run it names is missing.
    """
    path = Path(path)
    summary_file = path / "summary.json"
    summary = _read_json(summary_file, BENCH_FORMAT)

    def run_at(rel: Any, label: str | None) -> Run:
        if not isinstance(rel, str) or not (path / rel).is_dir():
            raise DataError(f"{summary_file} names the run folder {rel!r}, but {path / str(rel)} is not a folder; "
                            f"restore the run or rerun the benchmark")
        return load_run(path / rel, default_label=label or rel)

    rows_data = summary.get("rows", [])
    if not isinstance(rows_data, list) or not all(isinstance(r, dict) for r in rows_data):
        raise DataError(f"{summary_file}: \"rows\" must be a list of objects; rerun the benchmark")
    rows = []
    for r in rows_data:
        runs = [run_at(rel, None) for rel in r.get("runs") or []]
        n = r.get("n")
        rows.append(BenchRow(method=str(r.get("method", "?")), condition=str(r.get("condition", "")),
                             n=n if isinstance(n, int) else len(runs), mean=r.get("mean") or {},
                             std=r.get("std") or {}, runs=runs))
    upper = summary.get("upper_bound")
    upper = upper if isinstance(upper, dict) else None
    upper_run = run_at(upper["run"], upper.get("label")) if upper and upper.get("run") else None
    return Bench(path, summary, rows, upper, upper_run)


def _runs_of(item: Run | Bench) -> list[Run]:
    return [item] if isinstance(item, Run) else item.runs


def _load(path: Path) -> Run | Bench:
    if not path.exists():
        raise DataError(f"report PATH {path} does not exist; {EXPECTED}")
    if not path.is_dir():
        raise DataError(f"report PATH {path} is not a folder; {EXPECTED}")
    return load_bench(path) if (path / "summary.json").is_file() else load_run(path)


# --------------------------------------------------------------------------- flips


def flip_mask(pred: np.ndarray, labels: np.ndarray, ignore_index: int = 255, *, source: str = "") -> np.ndarray:
    """Pixels whose semantics flipped: the segmenter's class on the translation differs from the label.

    Args:
        pred: (H, W) integer class ids predicted on the translated image.
        labels: (H, W) integer class ids of the source image; ``ignore_index`` pixels never flip.
        source: file names for error messages.

    Returns:
        (H, W) bool array, True where flipped.

    Raises:
        DataError: the shapes differ.
    """
    pred, labels = np.asarray(pred), np.asarray(labels)
    if pred.shape != labels.shape or pred.ndim != 2:
        where = f" ({source})" if source else ""
        raise DataError(f"prediction shape {pred.shape} and label map shape {labels.shape} must be the same "
                        f"(H, W){where}; evaluate the translations at the label resolution")
    return (pred != labels) & (labels != ignore_index)


def highlight_flips(image: np.ndarray, mask: np.ndarray, alpha: float = 0.65) -> np.ndarray:
    """Blend ``FLIP_COLOUR`` (saturated magenta) over the flipped pixels; the others stay as they are.

    Args:
        image: (H, W, 3) uint8 RGB.
        mask: (H, W) bool, True where flipped (see ``flip_mask``).
        alpha: opacity of the highlight in [0, 1].

    Returns:
        (H, W, 3) uint8 RGB copy of ``image``.
    """
    if image.shape[:2] != mask.shape or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image {image.shape} must be (H, W, 3) with the mask's (H, W) {mask.shape}")
    out = image.copy()
    blended = (1.0 - alpha) * image[mask].astype(np.float64) + alpha * np.asarray(FLIP_COLOUR, dtype=np.float64)
    out[mask] = np.rint(blended).astype(np.uint8)
    return out


# --------------------------------------------------------------------------- HTML pieces


def _e(value: Any) -> str:
    return html.escape(str(value))


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _img(png: bytes, alt: str) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" alt="{_e(alt)}">'


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "scores") -> str:
    """Header cells are text (escaped here); row cells are HTML, escaped by the caller."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _metric_columns(keys: Iterable[str]) -> list[str]:
    keys = set(keys)
    fixed = [k for k in (*SEG_KEYS, "dist") if k in keys]
    acc = sorted((k for k in keys if k.startswith("acc_") and k[4:].isdigit()), key=lambda k: int(k[4:]))
    return fixed + acc + sorted(keys - set(fixed) - set(acc))


def _heading(key: str) -> str:
    return HEADINGS.get(key) or (f"Acc({key[4:]}) %" if key.startswith("acc_") else key)


def _fmt(key: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "&mdash;"
    return f"{100 * value if key in SEG_KEYS or key.startswith('acc_') else value:.2f}"


def _flat_scores(scores: dict[str, Any]) -> dict[str, Any]:
    """An eval record's scores under the bench summary's metric names (acc_30, ...)."""
    seg = scores.get("segmentation") or {}
    paired = scores.get("paired") or {}
    flat = {k: seg[k] for k in SEG_KEYS if k in seg}
    if "dist" in paired:
        flat["dist"] = paired["dist"]
    flat.update({f"acc_{d}": v for d, v in (paired.get("acc") or {}).items()})
    return flat


# --------------------------------------------------------------------------- sections


def _runs_section(runs: list[Run]) -> str:
    rows = [[_e(r.label), _e(r.method or "?"), f"<code>{_e(r.path)}</code>", _e("" if r.steps is None else r.steps)]
            for r in runs]
    return "<h2>Runs</h2>" + _table(["run", "method", "folder", "steps"], rows, cls="runs")


def _bench_section(bench: Bench) -> str:
    s = bench.summary
    keys = s.get("metrics") or {k for row in bench.rows for k in row.mean}
    columns = _metric_columns(keys)
    rows = [[_e(row.method), _e(row.condition), _e(row.n)]
            + [_fmt(k, row.mean.get(k)) + ("" if row.std.get(k) is None else f" &plusmn; {_fmt(k, row.std.get(k))}")
               for k in columns] for row in bench.rows]
    if bench.upper_bound:
        rows.append([f"<em>{_e(bench.upper_bound.get('label', 'upper bound'))}</em>", "", ""]
                    + [_fmt(k, bench.upper_bound.get(k)) for k in columns])
    parts = [f"<h2>Benchmark {_e(s.get('benchmark', ''))}</h2>", f"<p><code>{_e(bench.path)}</code></p>",
             _table(["method", "condition", "n", *(_heading(k) for k in columns)], rows),
             "<p class=\"note\">mean &plusmn; std over n runs (seeds); accuracies in percent.</p><ul>"]
    for name in ("command", "machine"):
        if s.get(name):
            parts.append(f"<li>{name}: <code>{_e(s[name])}</code></li>")
    if isinstance(s.get("settings"), dict):
        settings = ", ".join(f"{k}={v}" for k, v in s["settings"].items())
        parts.append(f"<li>settings: <code>{_e(settings)}</code></li>")
    return "".join(parts) + "</ul>"


def _scores_section(runs: list[Run]) -> str:
    scored = [(r, _flat_scores(r.scores)) for r in runs if r.scores and _flat_scores(r.scores)]
    if not scored:
        return ""
    columns = _metric_columns(k for _, flat in scored for k in flat)
    rows = [[_e(r.label), _e(r.method or "?")] + [_fmt(k, flat.get(k)) for k in columns] for r, flat in scored]
    return "<h2>Evaluated runs</h2>" + _table(["run", "method", *(_heading(k) for k in columns)], rows)


def _new_figure(width: float, height: float) -> Any:
    # Imported here: matplotlib takes most of a second to import and only the report needs it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _figure_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
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


def _iou_section(items: list[Run | Bench]) -> str:
    series: list[tuple[str, dict[int, float]]] = []
    for item in items:
        groups = [(item.label, [item])] if isinstance(item, Run) else \
            [(row.label, row.runs) for row in item.rows] + ([(item.upper_run.label, [item.upper_run])]
                                                           if item.upper_run else [])
        for label, runs in groups:
            values = _mean_iou_by_class(runs)
            if values:
                series.append((label, values))
    if not series:
        return ""
    names = _class_names([r for item in items for r in _runs_of(item)])
    ids = sorted(set().union(*(values for _, values in series)))
    width = 0.8 / len(series)
    fig = _new_figure(min(30.0, max(6.0, 1.0 + len(ids) * (0.25 + 0.1 * len(series)))), 3.6)
    ax = fig.subplots()
    x = np.arange(len(ids))
    for i, (label, values) in enumerate(series):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, [100 * values.get(c, math.nan) for c in ids], width,
               label=label, color=_line_style(i)["color"], hatch=None if i < 10 else "//")
    ax.set_xticks(x, [names.get(c, f"class {c}") for c in ids], rotation=45, ha="right")
    ax.set_ylabel("IoU %")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    note = ("<p class=\"note\">One group per class, one bar per run (a benchmark row averages its runs). A missing "
            "bar: the class is absent from that run's labels.</p>")
    return "<h2>Per-class IoU</h2>" + note + _img(_figure_png(fig), "per-class IoU")


def _loss_section(runs: list[Run]) -> str:
    runs = [r for r in runs if r.metrics]
    keys = list(dict.fromkeys(k for r in runs for values in r.metrics.values() for k in values if k not in NOT_LOSSES))
    if not keys:
        return ""
    ncols = min(3, len(keys))
    nrows = -(-len(keys) // ncols)
    fig = _new_figure(4.0 * ncols, 2.6 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    handles: dict[int, Any] = {}  # run index -> its line; labels of different runs may coincide
    for ax, key in zip(axes, keys):
        for i, run in enumerate(runs):
            points = [(step, values[key]) for step, values in run.metrics.items() if key in values]
            if points:
                steps, ys = zip(*points)
                lines = ax.plot(steps, ys, linewidth=1.2, marker="o" if len(steps) == 1 else None, **_line_style(i))
                handles.setdefault(i, lines[0])
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.legend(list(handles.values()), [runs[i].label for i in handles], loc="upper center",
               bbox_to_anchor=(0.5, 0.0), ncol=min(4, len(handles)), fontsize="small")
    return "<h2>Training losses</h2>" + _img(_figure_png(fig), "loss curves")


# --------------------------------------------------------------------------- image grids


def _folders(run: Run) -> dict[str, Path]:
    """The eval record's image folders; relative ones are relative to the run's eval/ folder."""
    images = (run.scores or {}).get("images")
    if not isinstance(images, dict):
        return {}
    return {role: run.path / "eval" / str(images[role])
            for role in ("source", "target", "labels", "translated", "predicted") if images.get(role)}


def _by_stem(folder: Path, role: str, notes: list[str]) -> dict[str, Path] | None:
    try:
        files = scan_images(folder, role, hint="rerun the evaluation to write it")
    except DataError as e:
        notes.append(str(e))
        return None
    return {p.relative_to(folder).with_suffix("").as_posix(): p for p in files}


def _cell(image: np.ndarray, alt: str) -> str:
    img = Image.fromarray(image)
    factor = -(-MIN_CELL_WIDTH // img.width)
    if factor > 1:
        img = img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)
    return _img(_png(img), alt)


def _grid(shared: dict[str, Path], runs: list[tuple[Run, dict[str, Path]]], num_images: int,
          notes: list[str]) -> str:
    """One table: a row per image name, columns source | each run, flips highlighted | ground truth."""
    roles = [r for r in ("source", "labels", "target") if r in shared]
    maps = {r: _by_stem(shared[r], f"{r} image", notes) for r in roles}
    if any(m is None for m in maps.values()):
        return ""
    shown = []
    for run, folders in runs:
        translated = _by_stem(folders["translated"], f"{run.label}: translated image", notes)
        predicted = _by_stem(folders["predicted"], f"{run.label}: predicted label", notes)
        if translated is not None and predicted is not None:
            shown.append((run, translated, predicted))
    names = set(maps["labels"]).intersection(*maps.values(), *(m for _, t, p in shown for m in (t, p)))
    if not shown or not names:
        notes.append("no image name is shared by " + ", ".join(run.label for run, _ in runs))
        return ""
    header = ["image"] + (["source"] if "source" in maps else []) + [run.label for run, _, _ in shown] \
        + (["ground truth"] if "target" in maps else [])
    rows = []
    for name in sorted(names)[:num_images]:
        labels = load_label_map(maps["labels"][name])
        row = [_e(name)]
        if "source" in maps:
            row.append(_cell(np.asarray(load_rgb(maps["source"][name])), f"source {name}"))
        for run, translated, predicted in shown:
            ignore = int(((run.scores or {}).get("segmentation") or {}).get("ignore_index", 255))
            image = np.asarray(load_rgb(translated[name]))
            mask = flip_mask(load_label_map(predicted[name]), labels, ignore,
                             source=f"{predicted[name]} / {maps['labels'][name]}")
            if image.shape[:2] != mask.shape:
                raise DataError(f"translated image {translated[name]} is {image.shape[1]}x{image.shape[0]} but its "
                                f"label map {maps['labels'][name]} is {mask.shape[1]}x{mask.shape[0]}; "
                                f"rerun the evaluation")
            labelled = np.count_nonzero(labels != ignore)
            share = f"flipped {100 * mask.sum() / labelled:.1f}%" if labelled else "no labelled pixels"
            # The plain translation above, the same image with its flips marked below.
            row.append(_cell(image, f"{run.label} {name}") + _cell(highlight_flips(image, mask), f"{run.label} {name} "
                       "flips") + f"<div>{_e(share)}</div>")
        if "target" in maps:
            row.append(_cell(np.asarray(load_rgb(maps["target"][name])), f"ground truth {name}"))
        rows.append(row)
    return _table(header, rows, cls="grid")


def _grids_section(items: list[Run | Bench], num_images: int) -> str:
    if num_images == 0:
        return ""
    # A bench shows one run per row (its first seed) and the upper bound.
    runs = [r for item in items for r in ([item] if isinstance(item, Run) else
                                          [row.runs[0] for row in item.rows if row.runs]
                                          + ([item.upper_run] if item.upper_run else []))]
    groups: dict[tuple[Path | None, ...], list[tuple[Run, dict[str, Path]]]] = {}
    notes: list[str] = []
    for run in runs:
        folders = _folders(run)
        if not folders:
            continue
        missing = [r for r in ("labels", "translated", "predicted") if r not in folders]
        if missing:
            notes.append(f"{run.label}: eval/scores.json names no {' or '.join(missing)} folder")
            continue
        groups.setdefault((folders.get("source"), folders["labels"], folders.get("target")), []).append((run, folders))
    grids = [_grid({r: f for r, f in zip(("source", "labels", "target"), key) if f is not None}, members,
                   num_images, notes) for key, members in groups.items()]
    if not any(grids) and not notes:
        return ""
    legend = ("<p class=\"note\">Each run's translation (top) and the same image with its <b style=\"color:#f0f\">"
              "flipped pixels in magenta</b> (bottom): pixels where the segmenter's class on the translation differs from the source "
              "label (ignore-labelled pixels never count). The percentage is the flipped share of the labelled "
              "pixels of that image.</p>")
    notes_html = "".join(f"<p class=\"note\">Not shown: {_e(n)}</p>" for n in notes)
    return "<h2>Translations</h2>" + legend + "".join(grids) + notes_html


# --------------------------------------------------------------------------- page

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; vertical-align: top; }
th { background: #f3f3f3; }
td:first-child, th:first-child, table.runs td { text-align: left; }
table.grid td { text-align: center; font-size: 0.85em; }
table.grid img { image-rendering: pixelated; display: block; margin: 0 auto 3px; }
p.note { color: #555; font-size: 0.9em; }
"""


def render_report(items: Sequence[Run | Bench], num_images: int = 6) -> str:
    """The report page for loaded runs and benches (see ``build_report``) as one HTML string."""
    items = list(items)
    runs = [r for item in items for r in _runs_of(item)]
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    title = f"<h1>srunit report</h1><p class=\"note\">generated {_e(generated)} by srunit {_e(srunit.__version__)}</p>"
    body = [title, _runs_section(runs)]
    body += [_bench_section(item) for item in items if isinstance(item, Bench)]
    body += [_scores_section(runs), _iou_section(items), _loss_section(runs), _grids_section(items, num_images)]
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>srunit report</title>"
            f"<style>{_CSS}</style></head>\n<body>\n" + "\n".join(b for b in body if b) + "\n</body></html>\n")


def _write_text_atomic(path: Path, text: str) -> None:
    # Temp file + os.replace: a browser reloading the report never sees half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; the report is meant to be shared
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_report(paths: Sequence[str | Path], out: str | Path | None = None, num_images: int = 6) -> Path:
    """Write the HTML report of run folders and bench folders to ``out`` and return its path.

    Args:
        paths: run folders (metrics.jsonl and/or eval/scores.json) or bench folders (summary.json).
        out: the HTML file; default ``paths[0]/report.html`` when one path is given.
        num_images: images per translation grid (the first ones sorted by name); 0 for none.

    Raises:
        ConfigError: no path, several paths without ``out``, ``out`` is a folder, ``num_images`` < 0.
        DataError: a path is not a run or bench folder, or a file in it is unreadable.
    """
    paths = [Path(p).expanduser() for p in paths]
    if not paths:
        raise ConfigError(f"no PATH given; {EXPECTED}")
    if num_images < 0:
        raise ConfigError(f"--images must be >= 0, got {num_images}; pass 0 to leave out the image grids")
    if out is None:
        if len(paths) > 1:
            raise ConfigError(f"{len(paths)} PATHs given without --out; pass --out FILE.html for a report of "
                              f"several runs (PATH/report.html is the default for a single PATH only)")
        out = paths[0] / "report.html"
    out = Path(out).expanduser()
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; pass a file name such as {out / 'report.html'}")
    items = [_load(p) for p in paths]
    _write_text_atomic(out, render_report(items, num_images))
    return out
