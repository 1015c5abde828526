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
                                                   "acc_50", "directed_flip_rate", "flip_rate",
                                                   "hallucination_rate"]
    assert (summary["format"], summary["benchmark"]) == ("srunit-bench/1", "synthscapes")
    assert [r["method"] for r in summary["rows"]] == ["srunit"]  # no identity row unless given
    assert summary["upper_bound"] == {"label": UPPER_BOUND_LABEL, "run": "upper_bound", "pixel_accuracy": 0.5,
                                      "class_accuracy": 0.25, "mean_iou": 0.125}
    table = format_table(summary).splitlines()
    assert table[0].startswith("| method | data | seeds | pixAcc |") and len(table) == 4
    assert (
        table[-1]
        == "| ground truth (segmenter upper bound) | - | - | 50.00 | 25.00 | 12.50 | 0.00 | 100.00 | 100.00 | - | - "
           "| - |"
    )


def _record(seed: int, pix: float, ious: list[float | None]) -> dict:
    return {
        "seed": seed,
        "segmentation": {
            "pixel_accuracy": pix,
            "class_accuracy": pix,
            "mean_iou": pix,
            "per_class": [{"id": i, "name": n, "iou": v} for i, (n, v) in enumerate(zip(["road", "tree"], ious))],
        },
        "paired": {"dist": 10 * pix, "acc": {"30": pix, "50": pix}},
    }


def test_differences_are_paired_by_seed_within_a_condition() -> None:
    cut = [
        ("u/cut-seed0", _record(0, 0.60, [0.5, 0.2])),
        ("u/cut-seed1", _record(1, 0.70, [0.7, None])),
        ("u/cut-seed2", _record(2, 0.50, [0.6, 0.4])),
    ]
    # Listed in another seed order, and seed 3 has no CUT partner: it is left out of the pairs.
    srunit = [
        ("u/s2", _record(2, 0.56, [0.6, 0.4])),
        ("u/s0", _record(0, 0.62, [0.5, 0.2])),
        ("u/s1", _record(1, 0.74, [0.8, 0.3])),
        ("u/s3", _record(3, 0.10, [0.1, 0.1])),
    ]
    summary = summarize(
        {
            ("cut", "unmatched"): cut,
            ("srunit", "unmatched"): srunit,
            ("srunit", "matched"): [("m/s0", _record(0, 0.9, [0.9, 0.9]))],
        },
        _record(0, 1.0, [1, 1]),
    )
    assert summary["baseline"] == "cut"
    [diff] = summary["differences"]  # no CUT run on matched data: no pairs there
    assert (diff["method"], diff["condition"], diff["seeds"]) == ("srunit", "unmatched", [0, 1, 2])
    pix = diff["metrics"]["pixel_accuracy"]
    # Pairs by seed: 0.62-0.60, 0.74-0.70, 0.56-0.50 = 0.02, 0.04, 0.06.
    assert pix["n"] == 3 and pix["mean"] == pytest.approx(0.04) and pix["std"] == pytest.approx(0.02)
    half = 4.302653 * 0.02 / 3**0.5  # t(0.975, 2 df)
    assert (pix["low"], pix["high"]) == (pytest.approx(0.04 - half, abs=1e-6), pytest.approx(0.04 + half, abs=1e-6))
    assert pix["established"] is False  # 0.04 +- 0.0497 includes 0
    assert diff["metrics"]["dist"]["mean"] == pytest.approx(0.4)
    # Per-class IoU: mean over the seeds where the class is present (seed 1 has no tree for CUT).
    cut_row = summary["rows"][0]
    assert cut_row["per_class_iou"]["road"]["mean"] == pytest.approx(0.6)
    assert cut_row["per_class_iou"]["tree"] == {"mean": pytest.approx(0.3), "std": pytest.approx(0.1414214), "n": 2}
    table = format_table(summary)
    assert "| srunit | unmatched | 3 | +4.00 [-0.97, +8.97] |" in table
    assert "| method | data | road | tree |" in table and "| cut | unmatched | 60.0 | 30.0 |" in table


def test_established_differences_are_marked_and_one_pair_has_no_interval() -> None:
    cut = [(f"c{s}", _record(s, 0.5 + 0.01 * s, [0.5, 0.5])) for s in range(4)]
    better = [(f"b{s}", _record(s, 0.6 + 0.01 * s + 0.001 * (s % 2), [0.6, 0.6])) for s in range(4)]
    summary = summarize({("cut", "u"): cut, ("e5", "u"): better}, _record(0, 1.0, [1, 1]))
    assert summary["differences"][0]["metrics"]["pixel_accuracy"]["established"] is True
    assert "+10.05 [+9.96, +10.14] *" in format_table(summary)  # t(0.975, 3 df) = 3.182446
    one = summarize({("cut", "u"): cut[:1], ("e5", "u"): better[:1]}, _record(0, 1.0, [1, 1]))
    assert "+10.00 (1 pair: no interval)" in format_table(one)
    assert summarize({("e5", "u"): better}, _record(0, 1.0, [1, 1]))["differences"] == []


def test_hallucination_rate_is_summarised_and_paired_lower_is_better() -> None:
    """The nonbijective condition's hallucination rate: mean over seeds in the table (in percent), and each
    method's difference from the baseline paired by seed, beside the other scores."""
    from srunit.synthscapes.summary import LOWER_IS_BETTER, format_differences

    def record(seed: int, rate: float) -> dict:
        return {"seed": seed, "segmentation": {"pixel_accuracy": 0.5, "class_accuracy": 0.5, "mean_iou": 0.5,
                                               "hallucination": {"hallucination_rate": rate, "classes": ["car"]}},
                "paired": {"dist": 1.0, "acc": {"30": 0.5, "50": 0.5}}}

    records = {("cut", "nonbijective"): [(f"c{s}", record(s, 0.010 + 0.001 * s)) for s in range(3)],
               ("stegogan", "nonbijective"): [(f"s{s}", record(s, 0.004 + 0.0015 * s)) for s in range(3)]}
    summary = summarize(records, record(0, 0.001))
    assert "hallucination_rate" in LOWER_IS_BETTER
    assert summary["rows"][0]["mean"]["hallucination_rate"] == pytest.approx(0.011)
    diff = summary["differences"][0]["metrics"]["hallucination_rate"]
    assert diff["n"] == 3 and diff["mean"] == pytest.approx(-0.0055)  # the mean of -0.006, -0.0055, -0.005
    assert diff["established"] and diff["high"] < 0  # every pair lower, by 0.005 to 0.006
    table = format_table(summary)
    assert "| Halluc. |" in table and "1.10 ± 0.10" in table and "0.55 ± 0.15" in table
    assert "hallucination rate: lower is better" in format_differences(summary)
