"""The SynthScapes summary: mean and spread over seeds per method and condition, and its table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from srunit.eval.records import BENCH_FORMAT, SEGMENTATION_KEYS, flat_scores

__all__ = ["METRICS", "UPPER_BOUND_LABEL", "summarize", "format_table"]

METRICS = ("pixel_accuracy", "class_accuracy", "mean_iou", "dist", "acc_30", "acc_50")
UPPER_BOUND_LABEL = "segmenter on ground-truth renderings"


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def summarize(records: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]],
              upper_record: dict[str, Any], identity_record: dict[str, Any] | None = None) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof=1) over seeds per (method, condition).

    ``identity_record`` (the untranslated label maps, folder ``identity``) becomes a last row
    with n = 1; ``upper_record`` (the ground truth, folder ``upper_bound``) the upper bound.
    """
    if identity_record is not None:
        records = {**records, ("label maps, untranslated", "-"): [("identity", identity_record)]}
    rows = []
    for (method, condition), runs in records.items():
        flats = [flat_scores(r) for _, r in runs]
        stats = {k: _mean_std([f[k] for f in flats]) for k in METRICS}
        rows.append({"method": method, "condition": condition, "n": len(runs),
                     "mean": {k: v[0] for k, v in stats.items()}, "std": {k: v[1] for k, v in stats.items()},
                     "runs": [path for path, _ in runs]})
    upper = flat_scores(upper_record)
    return {
        "format": BENCH_FORMAT, "benchmark": "synthscapes", "metrics": list(METRICS), "rows": rows,
        "upper_bound": {"label": UPPER_BOUND_LABEL, "run": "upper_bound",
                        **{k: upper[k] for k in SEGMENTATION_KEYS}},
    }


def format_table(summary: dict[str, Any]) -> str:
    """Markdown table in the layout of paper Table 1: percentages for accuracies, mean ± std over seeds."""
    head = "| method | data | seeds | pixAcc | clsAcc | mIoU | Dist | Acc(30) | Acc(50) |"
    lines = [head, "|---" * (head.count("|") - 1) + "|"]

    def cell(row: dict[str, Any], key: str) -> str:
        scale = 1.0 if key == "dist" else 100.0
        mean, std = row["mean"][key] * scale, row["std"][key] * scale
        return f"{mean:.2f} ± {std:.2f}" if row["n"] > 1 else f"{mean:.2f}"

    for row in summary["rows"]:
        seeds = row["n"] if row["condition"] != "-" else "-"
        lines.append(f"| {row['method']} | {row['condition']} | {seeds} | "
                     + " | ".join(cell(row, k) for k in METRICS) + " |")
    ub = summary["upper_bound"]
    lines.append(f"| ground truth (segmenter upper bound) | - | - | {100 * ub['pixel_accuracy']:.2f} | "
                 f"{100 * ub['class_accuracy']:.2f} | {100 * ub['mean_iou']:.2f} | 0.00 | 100.00 | 100.00 |")
    return "\n".join(lines)
