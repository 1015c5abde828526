"""The SynthScapes summary: mean and spread over seeds per method and condition, each method's
difference from the baseline paired by seed (with its 95% interval), per-class IoU, and the tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from srunit.eval.records import BENCH_FORMAT, SEGMENTATION_KEYS, flat_scores
from srunit.eval.statistics import paired_difference

__all__ = ["METRICS", "UPPER_BOUND_LABEL", "DEFAULT_BASELINE", "summarize", "format_table"]

DEFAULT_BASELINE = "cut"
CONFIDENCE = 0.95

METRICS = ("pixel_accuracy", "class_accuracy", "mean_iou", "dist", "acc_30", "acc_50")
UPPER_BOUND_LABEL = "segmenter on ground-truth renderings"


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
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
              baseline: str = DEFAULT_BASELINE) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof=1) over seeds per (method, condition), the
    per-class IoU of each row, and every method's difference from ``baseline`` paired by seed.

    ``identity_record`` (the untranslated label maps, folder ``identity``) becomes a last row
    with n = 1; ``upper_record`` (the ground truth, folder ``upper_bound``) the upper bound.
    """
    differences = _differences(records, baseline)
    if identity_record is not None:
        records = {**records, ("label maps, untranslated", "-"): [("identity", identity_record)]}
    rows = []
    for (method, condition), runs in records.items():
        flats = [flat_scores(r) for _, r in runs]
        stats = {k: _mean_std([f[k] for f in flats]) for k in METRICS}
        rows.append({"method": method, "condition": condition, "n": len(runs),
                     "mean": {k: v[0] for k, v in stats.items()}, "std": {k: v[1] for k, v in stats.items()},
                     "per_class_iou": _per_class_iou([r for _, r in runs]),
                     "runs": [path for path, _ in runs]})
    upper = flat_scores(upper_record)
    return {
        "format": BENCH_FORMAT, "benchmark": "synthscapes", "metrics": list(METRICS), "rows": rows,
        "baseline": baseline, "confidence": CONFIDENCE, "differences": differences,
        "upper_bound": {"label": UPPER_BOUND_LABEL, "run": "upper_bound",
                        **{k: upper[k] for k in SEGMENTATION_KEYS}},
    }


_HEADINGS = {"pixel_accuracy": "pixAcc", "class_accuracy": "clsAcc", "mean_iou": "mIoU", "dist": "Dist",
             "acc_30": "Acc(30)", "acc_50": "Acc(50)"}


def _scale(key: str) -> float:
    return 1.0 if key == "dist" else 100.0


def format_table(summary: dict[str, Any]) -> str:
    """Markdown tables: the scores in the layout of paper Table 1 (percentages for accuracies, mean ± std
    over seeds), each method's paired difference from the baseline with its 95% interval, and the
    per-class IoU."""
    head = "| method | data | seeds | " + " | ".join(_HEADINGS[k] for k in METRICS) + " |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]

    def cell(row: dict[str, Any], key: str) -> str:
        mean, std = row["mean"][key] * _scale(key), row["std"][key] * _scale(key)
        return f"{mean:.2f} ± {std:.2f}" if row["n"] > 1 else f"{mean:.2f}"

    for row in summary["rows"]:
        seeds = row["n"] if row["condition"] != "-" else "-"
        lines.append(f"| {row['method']} | {row['condition']} | {seeds} | "
                     + " | ".join(cell(row, k) for k in METRICS) + " |")
    ub = summary["upper_bound"]
    lines.append(f"| ground truth (segmenter upper bound) | - | - | {100 * ub['pixel_accuracy']:.2f} | "
                 f"{100 * ub['class_accuracy']:.2f} | {100 * ub['mean_iou']:.2f} | 0.00 | 100.00 | 100.00 |")
    diffs = summary.get("differences") or []
    if diffs:
        lines += ["", format_differences(summary)]
    per_class = [r for r in summary["rows"] if r.get("per_class_iou") and r["condition"] != "-"]
    if per_class:
        lines += ["", format_per_class_iou(summary)]
    return "\n".join(lines)


def format_differences(summary: dict[str, Any]) -> str:
    """Each method minus the baseline, paired by seed: mean [95% interval]; `*` where it excludes 0."""
    confidence = int(round(100 * summary.get("confidence", CONFIDENCE)))
    head = "| method - " + summary["baseline"] + " | data | pairs | " + " | ".join(_HEADINGS[k] for k in METRICS) + " |"
    lines = [f"Difference from {summary['baseline']}, paired by seed (mean [{confidence}% t interval]; "
             "* the interval excludes 0; Dist: lower is better):", "", head, "|---" * (head.count("|") - 1) + "|"]

    def cell(d: dict[str, Any], key: str) -> str:
        s = _scale(key)
        if d["n"] == 0:
            return "-"
        if d["low"] is None:
            return f"{d['mean'] * s:+.2f} (1 pair: no interval)"
        mark = " *" if d["established"] else ""
        return f"{d['mean'] * s:+.2f} [{d['low'] * s:+.2f}, {d['high'] * s:+.2f}]{mark}"

    for diff in summary["differences"]:
        pairs = diff["metrics"][METRICS[0]]["n"]
        lines.append(f"| {diff['method']} | {diff['condition']} | {pairs} | "
                     + " | ".join(cell(diff["metrics"][k], k) for k in METRICS) + " |")
    return "\n".join(lines)


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
