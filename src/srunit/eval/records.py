"""The files evaluation results are kept in, shared by their writers and by `srunit report`.

``RUN/eval/scores.json`` (format ``EVAL_FORMAT``) holds one run's scores: ``segmentation``
(``SegmentationScores.to_dict``), ``paired`` (``PairedScores.to_dict``) and where its images are;
a benchmark's ``summary.json`` (format ``BENCH_FORMAT``) holds mean and spread per row under
the flat metric names of ``flat_scores``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EVAL_FORMAT", "BENCH_FORMAT", "SEGMENTATION_KEYS", "flat_scores"]

EVAL_FORMAT = "srunit-eval/1"
BENCH_FORMAT = "srunit-bench/1"
SEGMENTATION_KEYS = ("pixel_accuracy", "class_accuracy", "mean_iou")


def flat_scores(record: dict[str, Any]) -> dict[str, float]:
    """An evaluation record's scores under flat names: the segmentation keys, ``dist`` and
    ``acc_30``-style keys; a score the record lacks is left out."""
    seg = record.get("segmentation") or {}
    paired = record.get("paired") or {}
    flat = {k: seg[k] for k in SEGMENTATION_KEYS if k in seg}
    if "dist" in paired:
        flat["dist"] = paired["dist"]
    flat.update({f"acc_{d}": v for d, v in (paired.get("acc") or {}).items()})
    return flat
