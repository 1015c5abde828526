"""srunit.synthscapes.summary: mean and spread over seeds and the paper-Table-1 layout."""

from __future__ import annotations

import pytest

from srunit.synthscapes import METRICS, format_table, summarize
from srunit.synthscapes.summary import UPPER_BOUND_LABEL


def test_summary_statistics_and_table() -> None:
    def record(pix: float, dist: float) -> dict:
        return {"segmentation": {"pixel_accuracy": pix, "class_accuracy": pix / 2, "mean_iou": pix / 4},
                "paired": {"dist": dist, "acc": {"30": 0.5, "50": 0.75}}}

    records = {("cut", "unmatched"): [("u/a", record(0.6, 10.0)), ("u/b", record(0.7, 20.0)),
                                      ("u/c", record(0.8, 30.0))],
               ("cut", "matched"): [("m/a", record(0.9, 5.0))]}
    summary = summarize(records, record(0.99, 0.0), record(0.5, 70.0))
    row = summary["rows"][0]
    assert row["n"] == 3 and row["runs"] == ["u/a", "u/b", "u/c"]
    assert row["mean"]["pixel_accuracy"] == pytest.approx(0.7)
    assert row["std"]["pixel_accuracy"] == pytest.approx(0.1)  # sample std of 0.6, 0.7, 0.8
    assert row["std"]["dist"] == pytest.approx(10.0) and row["mean"]["acc_50"] == pytest.approx(0.75)
    assert summary["rows"][1]["std"]["dist"] == 0.0
    table = format_table(summary)
    assert "| cut | unmatched | 3 | 70.00 ± 10.00 | 35.00 ± 5.00 | 17.50 ± 2.50 | 20.00 ± 10.00 |" in table
    assert "| cut | matched | 1 | 90.00 |" in table and "99.00" in table
    assert "| label maps, untranslated | - | - | 50.00 | 25.00 | 12.50 | 70.00 |" in table


def test_summary_layout_and_upper_bound() -> None:
    record = {"segmentation": {"pixel_accuracy": 0.5, "class_accuracy": 0.25, "mean_iou": 0.125},
              "paired": {"dist": 12.0, "acc": {"30": 0.1, "50": 0.2}}}
    summary = summarize({("srunit", "matched"): [("m/a", record)]}, record)
    assert summary["metrics"] == list(METRICS) == ["pixel_accuracy", "class_accuracy", "mean_iou", "dist", "acc_30",
                                                   "acc_50"]
    assert (summary["format"], summary["benchmark"]) == ("srunit-bench/1", "synthscapes")
    assert [r["method"] for r in summary["rows"]] == ["srunit"]  # no identity row unless given
    assert summary["upper_bound"] == {"label": UPPER_BOUND_LABEL, "run": "upper_bound", "pixel_accuracy": 0.5,
                                      "class_accuracy": 0.25, "mean_iou": 0.125}
    table = format_table(summary).splitlines()
    assert table[0].startswith("| method | data | seeds | pixAcc |") and len(table) == 4
    assert table[-1] == "| ground truth (segmenter upper bound) | - | - | 50.00 | 25.00 | 12.50 | 0.00 | 100.00 | 100.00 |"
