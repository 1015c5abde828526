"""The SynthScapes summary: mean and spread over seeds per method and condition, each method's
difference from the baseline paired by seed (with its 95% interval), per-class IoU, and the tables."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from srunit.eval.records import BENCH_FORMAT, FLIP_KEYS, SEGMENTATION_KEYS, flat_scores, ground_truth_scores
from srunit.eval.statistics import paired_difference

__all__ = ["METRICS", "LOWER_IS_BETTER", "UPPER_BOUND_LABEL", "DEFAULT_BASELINE", "summarize", "format_table",
           "format_per_class_flips"]

DEFAULT_BASELINE = "cut"
CONFIDENCE = 0.95

METRICS = ("pixel_accuracy", "class_accuracy", "mean_iou", "dist", "acc_30", "acc_50", "directed_flip_rate",
           "flip_rate", "hallucination_rate")
LOWER_IS_BETTER = frozenset({"dist", "directed_flip_rate", "flip_rate", "hallucination_rate"})
UPPER_BOUND_LABEL = "segmenter on ground-truth renderings"


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (0 for one value; NaN for none: a score that records made before it existed lack)."""
    arr = np.asarray(values, dtype=np.float64)
    if not len(arr):
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def _per_class_iou(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Class name -> mean and std (ddof=1) of its IoU over the records where the class is present."""
    by_class: dict[str, list[float]] = {}
    for record in records:
        for entry in (record.get("segmentation") or {}).get("per_class", []):
            values = by_class.setdefault(str(entry["name"]), [])
            if entry.get("iou") is not None:
                values.append(float(entry["iou"]))
    out: dict[str, dict[str, float | None]] = {}
    for name, values in by_class.items():
        mean, std = _mean_std(values) if values else (None, None)
        out[name] = {"mean": mean, "std": std if len(values) > 1 else None, "n": len(values)}
    return out


def _number(x: float) -> float | None:
    return None if np.isnan(x) else x


def _per_class_flips(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Class name -> mean flip rate over the records that hold flips (`srunit.eval.flips`), and the class most of
    its flipped pixels went to (the mean flip matrix's largest off-diagonal entry of the row)."""
    matrices = [np.asarray([[np.nan if v is None else v for v in row] for row in flips["matrix"]], dtype=np.float64)
                for r in records if (flips := (r.get("segmentation") or {}).get("flips"))]
    names = [str(n) for n in (records[0].get("class_names") or []) if records] if matrices else []
    if not matrices or len(names) != matrices[0].shape[0]:
        return {}
    with warnings.catch_warnings():  # a class no test image holds is NaN in every record, and stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(np.stack(matrices), axis=0)
    out: dict[str, dict[str, float | None]] = {}
    for c, name in enumerate(names):
        row = mean[c, : len(names)].copy()
        kept = row[c]
        row[c] = -1.0
        # No destination where no pixel of the class went to another class: the table said "0.0 → building"
        to = int(np.nanargmax(row)) if np.isfinite(kept) and np.nanmax(row) > 0 else None
        flipped = float(1.0 - kept - mean[c, len(names)]) if np.isfinite(kept) else None
        out[name] = {"flip_rate": flipped, "top_destination": None if to is None else names[to],  # type: ignore[dict-item]
                     "top_destination_rate": None if to is None else float(row[to])}
    return out


def _differences(records: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]], baseline: str) -> list[dict]:
    """Per (method, condition) other than the baseline: metric -> paired difference from the baseline,
    paired by seed within the condition (seeds only one of the two has are left out)."""
    out = []
    for (method, condition), runs in records.items():
        base = records.get((baseline, condition))
        if method == baseline or base is None:
            continue
        base_by_seed = {r.get("seed"): flat_scores(r) for _, r in base if r.get("seed") is not None}
        mine_by_seed = {r.get("seed"): flat_scores(r) for _, r in runs if r.get("seed") is not None}
        seeds = sorted(set(base_by_seed) & set(mine_by_seed), key=lambda s: int(s or 0))
        metrics = {}
        for key in METRICS:
            pairs = [(mine_by_seed[s][key], base_by_seed[s][key]) for s in seeds
                     if key in mine_by_seed[s] and key in base_by_seed[s]]
            diff = paired_difference([a for a, _ in pairs], [b for _, b in pairs], CONFIDENCE)
            metrics[key] = diff.to_dict()
        out.append({"method": method, "condition": condition, "baseline": baseline, "seeds": seeds,
                    "metrics": metrics})
    return out


def summarize(records: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]],
              upper_record: dict[str, Any], identity_record: dict[str, Any] | None = None,
              baseline: str | Sequence[str] = DEFAULT_BASELINE) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof=1) over seeds per (method, condition), the
    per-class IoU of each row, and every method's difference from ``baseline`` paired by seed (from each of
    several baselines in turn, where a list is given: ``differences`` then holds every pair, each naming its
    baseline; ``baseline`` is the first).

    ``identity_record`` (the untranslated label maps, folder ``identity``) becomes a last row
    with n = 1; ``upper_record`` (the ground truth, folder ``upper_bound``) the upper bound.
    """
    baselines = [baseline] if isinstance(baseline, str) else list(baseline)
    differences = [d for b in baselines for d in _differences(records, b)]
    if identity_record is not None:
        records = {**records, ("label maps, untranslated", "-"): [("identity", identity_record)]}
    rows = []
    for (method, condition), runs in records.items():
        flats = [flat_scores(r) for _, r in runs]
        stats = {k: _mean_std([f[k] for f in flats if k in f]) for k in METRICS}
        rows.append({"method": method, "condition": condition, "n": len(runs),
                     "mean": {k: _number(v[0]) for k, v in stats.items()},
                     "std": {k: _number(v[1]) for k, v in stats.items()},
                     "per_class_iou": _per_class_iou([r for _, r in runs]),
                     "per_class_flips": _per_class_flips([r for _, r in runs]),
                     "runs": [path for path, _ in runs]})
    upper = flat_scores(upper_record)
    upper_keys = (*SEGMENTATION_KEYS, *(k for k in FLIP_KEYS if k in upper))
    return {
        "format": BENCH_FORMAT, "benchmark": "synthscapes", "metrics": list(METRICS), "rows": rows,
        "baseline": baselines[0], "baselines": baselines, "confidence": CONFIDENCE, "differences": differences,
        "upper_bound": {"label": UPPER_BOUND_LABEL, "run": "upper_bound",
                        **{k: upper[k] for k in upper_keys}},
    }


_HEADINGS = {"pixel_accuracy": "pixAcc", "class_accuracy": "clsAcc", "mean_iou": "mIoU", "dist": "Dist",
             "acc_30": "Acc(30)", "acc_50": "Acc(50)", "directed_flip_rate": "Flip A→B", "flip_rate": "Flip",
             "hallucination_rate": "Halluc."}


def _scale(key: str) -> float:
    return 1.0 if key == "dist" else 100.0


def format_table(summary: dict[str, Any]) -> str:
    """Markdown tables: the scores in the layout of paper Table 1 (percentages for accuracies, mean ± std
    over seeds), each method's paired difference from the baseline with its 95% interval, and the
    per-class IoU."""
    head = "| method | data | seeds | " + " | ".join(_HEADINGS[k] for k in METRICS) + " |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]

    def cell(row: dict[str, Any], key: str) -> str:
        mean, std = row["mean"].get(key), row["std"].get(key)
        if mean is None or not np.isfinite(mean):
            return "-"
        mean, std = mean * _scale(key), (std or 0.0) * _scale(key)
        return f"{mean:.2f} ± {std:.2f}" if row["n"] > 1 else f"{mean:.2f}"

    for row in summary["rows"]:
        seeds = row["n"] if row["condition"] != "-" else "-"
        lines.append(f"| {row['method']} | {row['condition']} | {seeds} | "
                     + " | ".join(cell(row, k) for k in METRICS) + " |")
    ub = ground_truth_scores(summary["upper_bound"], METRICS)
    lines.append("| ground truth (segmenter upper bound) | - | - | "
                 + " | ".join("-" if ub.get(k) is None else f"{ub[k] * _scale(k):.2f}" for k in METRICS) + " |")
    diffs = summary.get("differences") or []
    if diffs:
        lines += ["", format_differences(summary)]
    per_class = [r for r in summary["rows"] if r.get("per_class_iou") and r["condition"] != "-"]
    if per_class:
        lines += ["", format_per_class_iou(summary)]
    if any(r.get("per_class_flips") and r["condition"] != "-" for r in summary["rows"]):
        lines += ["", format_per_class_flips(summary)]
    return "\n".join(lines)


def format_differences(summary: dict[str, Any]) -> str:
    """Each method minus the baseline (each baseline in turn), paired by seed: mean [95% interval]; `*` where it
    excludes 0."""
    confidence = int(round(100 * summary.get("confidence", CONFIDENCE)))
    baselines = summary.get("baselines") or [summary["baseline"]]

    def cell(d: dict[str, Any], key: str) -> str:
        s = _scale(key)
        if d["n"] == 0 or d["mean"] is None:
            return "-"
        if d["low"] is None:
            return f"{d['mean'] * s:+.2f} (1 pair: no interval)"
        mark = " *" if d["established"] else ""
        return f"{d['mean'] * s:+.2f} [{d['low'] * s:+.2f}, {d['high'] * s:+.2f}]{mark}"

    blocks = []
    for baseline in baselines:
        head = "| method - " + baseline + " | data | pairs | " + " | ".join(_HEADINGS[k] for k in METRICS) + " |"
        lines = [f"Difference from {baseline}, paired by seed (mean [{confidence}% t interval]; "
                 "* the interval excludes 0; Dist, the flip rates and the hallucination rate: lower is better):", "",
                 head,
                 "|---" * (head.count("|") - 1) + "|"]
        for diff in summary["differences"]:
            if diff.get("baseline", summary["baseline"]) != baseline:
                continue
            pairs = diff["metrics"][METRICS[0]]["n"]
            lines.append(f"| {diff['method']} | {diff['condition']} | {pairs} | "
                         + " | ".join(cell(diff["metrics"][k], k) if k in diff["metrics"] else "-" for k in METRICS)
                         + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def format_per_class_iou(summary: dict[str, Any]) -> str:
    """Per-class IoU in percent (mean over the seeds where the class is in the test labels)."""
    rows = [r for r in summary["rows"] if r.get("per_class_iou") and r["condition"] != "-"]
    names = list(rows[0]["per_class_iou"])
    head = "| method | data | " + " | ".join(names) + " |"
    lines = ["Per-class IoU (percent, mean over seeds):", "", head, "|---" * (head.count("|") - 1) + "|"]
    for row in rows:
        values = [row["per_class_iou"].get(n, {}).get("mean") for n in names]
        lines.append(f"| {row['method']} | {row['condition']} | "
                     + " | ".join("-" if v is None else f"{100 * v:.1f}" for v in values) + " |")
    return "\n".join(lines)


def format_per_class_flips(summary: dict[str, Any]) -> str:
    """Per-class flip rate in percent (mean over seeds) and the class most of the flipped pixels went to."""
    rows = [r for r in summary["rows"] if r.get("per_class_flips") and r["condition"] != "-"]
    names = list(rows[0]["per_class_flips"])
    head = "| method | data | " + " | ".join(names) + " |"
    lines = ["Per-class flip rate (percent of the class's pixels segmented as another class, mean over seeds; "
             "→ the class most of them went to):", "", head, "|---" * (head.count("|") - 1) + "|"]

    def cell(entry: dict[str, Any] | None) -> str:
        if not entry or entry.get("flip_rate") is None:
            return "-"
        to = entry.get("top_destination")
        return f"{100 * entry['flip_rate']:.1f}" + (f" → {to}" if to else "")

    for row in rows:
        lines.append(f"| {row['method']} | {row['condition']} | "
                     + " | ".join(cell(row["per_class_flips"].get(n)) for n in names) + " |")
    return "\n".join(lines)
