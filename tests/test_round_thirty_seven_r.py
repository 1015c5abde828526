"""Round thirty-seven (R): a bench's and a study's record values the report read unchecked (probe 37i, D5, D19, D20,
D23, D24)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIX = "rerun the benchmark's command"
STUDY_FIX = "rerun the study's command"


def _said(warnings: list[str]) -> list[str]:
    """The warnings without the file each begins with."""
    return [w.split(": ", 1)[1] for w in warnings]


def _bench(root: Path, make_report_bench: Callable[[Path, Path], Path], data: Path, **changes: Any) -> Path:
    """A bench folder whose summary.json has ``changes`` (a key's value replaced)."""
    bench = make_report_bench(root, data)
    summary = json.loads((bench / "summary.json").read_text())
    summary.update(changes)
    (bench / "summary.json").write_text(json.dumps(summary))
    return bench


def _differences(metrics: Any, **more: Any) -> list[dict[str, Any]]:
    return [{"method": "srunit", "condition": "unmatched", "baseline": "cut", "seeds": [0, 1], "metrics": metrics,
             **more}]


def test_a_benchs_upper_bound_and_metrics_are_checked(
        tmp_path: Path, make_report_bench: Callable[[Path, Path], Path], tiny_data: Path) -> None:
    """`report BENCH` with summary.json's upper_bound {"mean_iou": -2.5, "pixel_accuracy": "abc", "acc_-30": 0.3}
    and metrics [..., "acc_-30"]: `| ground truth | ... | -250.00 | ... | 30.00 |`, a column `Acc(-30) %`, no "Not
    read" line (probe 37i, D19); the rows' values were already checked."""
    from srunit.report import render_report
    from srunit.report.runs import load_bench

    metrics = ["pixel_accuracy", "mean_iou", "acc_-30", 5]
    upper = {"label": "ground truth", "run": "upper_bound", "mean_iou": -2.5, "pixel_accuracy": "abc",
             "class_accuracy": 0.9, "acc_-30": 0.3}
    bench = load_bench(_bench(tmp_path / "b", make_report_bench, tiny_data, metrics=metrics, upper_bound=upper))
    assert _said(bench.warnings) == [
        "metrics[2] is not a score of Acc(delta): its delta is not an integer from 1 to 256 (got '-30'); no column is "
        f"shown for it: {FIX}",
        f"metrics[3] is not a score name (got 5); no column is shown for it: {FIX}",
        f"upper_bound.mean_iou is not a score from 0 to 1 (got -2.5); it is not shown: {FIX}",
        f"upper_bound.pixel_accuracy is not a finite number (got \"abc\"); it is not shown: {FIX}",
        "upper_bound.acc_-30 is not a score of Acc(delta): its delta is not an integer from 1 to 256 (got '-30'); it "
        f"is not shown: {FIX}"], bench.warnings
    assert bench.upper_bound == {"label": "ground truth", "run": "upper_bound", "class_accuracy": 0.9}
    page = render_report([bench], num_images=0)
    assert "-250.00" not in page and "Acc(-30)" not in page and "30.00" not in page
    assert "<h2>Not read</h2>" in page and "upper_bound.mean_iou is not a score from 0 to 1" in page
    # The metrics list alone named a column of dashes.
    only = load_bench(_bench(tmp_path / "c", make_report_bench, tiny_data, metrics=["acc_-30"]))
    assert "Acc(-30)" not in render_report([only], num_images=0)
    assert len(only.warnings) == 1 and "metrics[0] is not a score of Acc(delta)" in only.warnings[0]


def test_a_benchs_differences_and_confidence_of_the_wrong_kind_are_named_not_a_traceback(
        tmp_path: Path, make_report_bench: Callable[[Path, Path], Path], tiny_data: Path,
        capsys: pytest.CaptureFixture[str], cli_status: Callable[[list[str]], int]) -> None:
    """`report BENCH` with summary.json's differences holding a mean of "abc": a traceback ending `TypeError: '>='
    not supported between instances of 'str' and 'int'`; a confidence of "abc": `ValueError: could not convert string
    to float`, of Infinity: `OverflowError`; a mean of -2.5 and a high bound of 1e300 shown as `-250.00 [—,
    1000000000000000076297...656.00]` (probe 37i, D23)."""
    from srunit.report import render_report
    from srunit.report.runs import load_bench

    metrics = {"mean_iou": {"n": 2, "mean": -2.5, "low": float("nan"), "high": 1e300, "established": "yes"},
               "pixel_accuracy": {"n": 2, "mean": "abc", "low": None},
               "dist": {"n": -1, "mean": -500.0, "low": -10.0, "high": 10.0, "established": True},
               "acc_30": [1], "acc_-30": {"n": 2, "mean": 0.1}}
    bench = _bench(tmp_path / "b", make_report_bench, tiny_data, confidence="abc", baseline="cut",
                   differences=[*_differences(metrics), 7, *_differences([1], seeds=5)])
    loaded = load_bench(bench)
    assert _said(loaded.warnings) == [
        f"confidence is not a fraction between 0 and 1 (got \"abc\"); the intervals' confidence is not shown: {FIX}",
        f"differences[0].metrics.mean_iou.mean is not a difference of scores from -1 to 1 (got -2.5); it is not "
        f"shown: {FIX}",
        f"differences[0].metrics.mean_iou.low is not a finite number (got NaN); it is not shown: {FIX}",
        f"differences[0].metrics.mean_iou.high is not a difference of scores from -1 to 1 (got 1e+300); it is not "
        f"shown: {FIX}",
        f"differences[0].metrics.mean_iou.established is not true or false (got \"yes\"); it is not shown in bold: "
        f"{FIX}",
        f"differences[0].metrics.pixel_accuracy.mean is not a finite number (got \"abc\"); it is not shown: {FIX}",
        f"differences[0].metrics.dist.n is not a count of pairs (got -1); the difference is not shown: {FIX}",
        "differences[0].metrics.dist.mean is not a difference of scores from -441.673 to 441.673 (got -500.0); it is "
        f"not shown: {FIX}",
        f"differences[0].metrics.dist.established is true, but its interval does not exclude 0; it is not shown in "
        f"bold: {FIX}",
        f"differences[0].metrics.acc_30 is not an object (got [1]); it is not shown: {FIX}",
        "differences[0].metrics.acc_-30 is not a score of Acc(delta): its delta is not an integer from 1 to 256 (got "
        f"'-30'); it is not shown: {FIX}",
        f"differences[1] is not an object (got 7); it is not shown: {FIX}",
        f"differences[2].seeds is not a list of seeds (got 5); its count of pairs is not shown: {FIX}",
        f"differences[2].metrics is not an object (got [1]); its differences are not shown: {FIX}"], loaded.warnings
    page = render_report([loaded], num_images=0)
    assert "Difference from cut" in page and "[t interval]" in page
    assert "-250.00" not in page and "10000000" not in page and "+abc" not in page
    summary = json.loads((bench / "summary.json").read_text())
    for confidence, said in ((float("inf"), "Infinity"), (1.5, "1.5"), (True, "true"), (None, "null")):
        (bench / "summary.json").write_text(json.dumps(dict(summary, confidence=confidence)))
        out = tmp_path / f"r{said}.html"
        assert cli_status(["report", str(bench), "--out", str(out), "--images", "0"]) == 0, capsys.readouterr().err
        assert f"confidence is not a fraction between 0 and 1 (got {said})" in out.read_text()
    # A well-formed difference is shown as before: signed, with its interval, bold where it excludes 0.
    good = {"mean_iou": {"n": 2, "mean": 0.05, "low": 0.01, "high": 0.09, "established": True},
            "dist": {"n": 1, "mean": -3.0, "low": None, "high": None, "established": False}}
    (bench / "summary.json").write_text(json.dumps(dict(json.loads((bench / "summary.json").read_text()),
                                                        confidence=0.95, differences=_differences(good))))
    loaded = load_bench(bench)
    page = render_report([loaded], num_images=0)
    assert loaded.warnings == [] and "<strong>+5.00 [1.00, 9.00]</strong>" in page and "-3.00 (1 pair)" in page
    assert "95% t interval" in page


def test_a_benchs_interval_that_misses_its_mean_or_a_bold_that_it_does_not_earn_is_named(
        tmp_path: Path, make_report_bench: Callable[[Path, Path], Path], tiny_data: Path) -> None:
    """summary.json's difference {"mean": 0.2, "low": 0.4, "high": 0.1} was shown as `+20.00 [40.00, 10.00]`, and
    {"low": -0.1, "high": 0.2, "established": true} in bold, as excluding 0 (round thirty-seven (R), noted): neither
    comes from `eval.statistics.paired_difference`, whose interval holds its mean and is bold only excluding 0."""
    from srunit.eval.statistics import paired_difference
    from srunit.report import render_report
    from srunit.report.runs import load_bench

    real = paired_difference([0.30, 0.34, 0.41], [0.25, 0.30, 0.355]).to_dict()
    assert real["established"] and real["low"] <= real["mean"] <= real["high"]
    metrics = {"mean_iou": {"n": 2, "mean": 0.2, "low": 0.4, "high": 0.1, "established": False},
               "pixel_accuracy": {"n": 2, "mean": 0.05, "low": -0.1, "high": 0.2, "established": True},
               "class_accuracy": real}
    bench = load_bench(_bench(tmp_path / "b", make_report_bench, tiny_data, confidence=0.95, baseline="cut",
                              differences=_differences(metrics)))
    assert _said(bench.warnings) == [
        f"differences[0].metrics.mean_iou: its interval [0.4, 0.1] does not hold its mean 0.2; the interval is not "
        f"shown: {FIX}",
        f"differences[0].metrics.pixel_accuracy.established is true, but its interval does not exclude 0; it is not "
        f"shown in bold: {FIX}"], bench.warnings
    page = render_report([bench], num_images=0)
    assert "[40.00, 10.00]" not in page and "+20.00 [&mdash;, &mdash;]" in page
    assert "+5.00 [-10.00, 20.00]" in page and "<strong>+5.00" not in page
    shown = f"+{100 * real['mean']:.2f} [{100 * real['low']:.2f}, {100 * real['high']:.2f}]"
    assert f"<strong>{shown}</strong>" in page, page


def _study(folder: Path, **changes: Any) -> Path:
    """A tuning folder with two finished trials; ``changes``: study.json's keys replaced (``t0_KEY``: trial 0's)."""
    from srunit.report.runs import STUDY_FORMAT

    trials = [{"number": i, "state": "COMPLETE", "value": v, "scores": {"mean_iou": v},
               "params": {"method.lambda_nce": 2.0 - i}} for i, v in ((0, 0.3), (1, 0.5))]
    summary = {"format": STUDY_FORMAT, "study": "t", "objective": "mean_iou", "direction": "maximize", "finished": 2,
               "settings": {"trials": 2, "preset": "cut"}, "trials": trials}
    for key, value in changes.items():
        (trials[0] if key.startswith("t0_") else summary)[key.removeprefix("t0_")] = value
    folder.mkdir(parents=True)
    (folder / "study.json").write_text(json.dumps(summary))
    return folder


def test_a_studys_counts_and_direction_are_checked(tmp_path: Path) -> None:
    """`report STUDY` with study.json's direction "sideways", finished -5 and settings.trials "abc": `objective
    mean_iou (highest is best), -5 of abc trials finished`, nothing under "Not read" (probe 37i, D20)."""
    from srunit.report import render_report
    from srunit.report.runs import load_study

    study = load_study(_study(tmp_path / "t", direction="sideways", finished=-5, settings={"trials": "abc"}))
    assert _said(study.warnings) == [
        "direction is not maximize or minimize (got \"sideways\"); the finished trials are listed as study.json lists "
        f"them, none as the best: {STUDY_FIX}",
        f"finished is not a count of trials (got -5); the finished trials listed are counted instead: {STUDY_FIX}",
        f"settings.trials is not a count of trials (got \"abc\"); it is not shown: {STUDY_FIX}"], study.warnings
    page = render_report([study], num_images=0)
    shown = page.split("<h2>Not read")[0]
    assert "highest is best" not in shown and "-5" not in shown and "abc" not in shown
    assert "2 of ? trials finished" in page and "as study.json lists them" in page
    # Trial 0 (0.3) stays before trial 1 (0.5): neither is called the best.
    assert page.index("<td>30.00</td>") < page.index("<td>50.00</td>")
    for bad, said in (({"objective": "acc_-30"}, "objective is not a score of Acc(delta)"),
                      ({"objective": 5}, "objective is not a score name (got 5)"),
                      ({"settings": [1]}, "settings is not an object (got [1])"),
                      ({"finished": True}, "finished is not a count of trials (got true)"),
                      ({"t0_seed": -1}, "trials[0].seed is not a training seed (an integer from 0 to 2**64 - 1; got "
                                        "-1); it is not shown")):
        study = load_study(_study(tmp_path / str(len(list(tmp_path.iterdir()))), **bad))
        assert [w for w in study.warnings if said in w], study.warnings
        assert "<h2>Not read</h2>" in render_report([study], num_images=0)
    # A well-formed study reads as before.
    study = load_study(_study(tmp_path / "good", direction="minimize", objective="dist"))
    page = render_report([study], num_images=0)
    assert study.warnings == [] and "(lowest is best), 2 of 2 trials finished" in page and "best first" in page


@pytest.mark.parametrize(("changes", "said"), [
    ({"plots": [1]}, "plots is not an object of plot names and files (got [1]); no plot is shown"),
    ({"plots": "x"}, "plots is not an object of plot names and files (got \"x\"); no plot is shown"),
    ({"plots": {"history": 5}}, "plots.history is not a file name (got 5); it is left out"),
    ({"t0_params": [1, 2]}, "trials[0].params is not an object (got [1, 2]); its parameters are not shown"),
    ({"t0_params": "x"}, "trials[0].params is not an object (got \"x\"); its parameters are not shown"),
])
def test_a_studys_plots_or_params_of_the_wrong_kind_are_named_not_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
        cli_status: Callable[[list[str]], int], changes: dict[str, Any], said: str) -> None:
    """`report STUDY` with study.json's plots [1] (or "x"): a traceback ending `AttributeError: 'list' object has no
    attribute 'items'`; a trial's params [1, 2] (or "x"): `AttributeError: 'list' object has no attribute 'get'`
    (probe 37i, D24)."""
    folder = _study(tmp_path / "t", **changes)
    out = tmp_path / "t.html"
    assert cli_status(["report", str(folder), "--out", str(out)]) == 0, capsys.readouterr().err
    assert [r for r in caplog.records if r.getMessage() == f"{folder / 'study.json'}: {said}: {STUDY_FIX}"
            and r.levelname == "WARNING"], caplog.text
    page = out.read_text()
    assert "<h2>Not read</h2>" in page and said.split(" (got")[0] in page


@pytest.mark.parametrize("key", ["+30", " 30", "3_0", "\u0663\u0660", "30.0", "0030", "true", ""])
def test_an_impossible_acc_key_is_quoted_as_the_key_not_its_score(
        tmp_path: Path, make_report_run: Callable[..., Path], key: str) -> None:
    """`report RUN` with scores.json's paired.acc {"+30": 0.25}: `paired.acc.+30 is not a score of Acc(delta): its
    delta is not an integer from 1 to 256 (got 0.25)`: the score quoted as if it were the delta (probe 37i, D5)."""
    from srunit.report.runs import load_run

    run = make_report_run(tmp_path / "run", label="r")
    record = json.loads((run / "eval" / "scores.json").read_text())
    record["paired"]["acc"] = {key: 0.25, "30": 0.16}
    (run / "eval" / "scores.json").write_text(json.dumps(record))
    loaded = load_run(run)
    assert loaded.scores is not None and loaded.scores["paired"]["acc"] == {"30": 0.16}
    assert _said(loaded.warnings) == [f"paired.acc.{key} is not a score of Acc(delta): its delta is not an integer "
                                      f"from 1 to 256 (got {key!r}); it is not shown: run `srunit eval` again"]
    assert "0.25" not in loaded.warnings[0]


def test_an_impossible_acc_key_of_a_bench_row_or_a_trial_is_quoted_as_the_key(
        tmp_path: Path, make_report_bench: Callable[[Path, Path], Path], tiny_data: Path) -> None:
    """The same for a bench row's mean and a study trial's scores: `rows[0].mean.acc_-30 is not a score of
    Acc(delta): ... (got 0.5)` (probe 37i, D5, every caller of `score_problem`)."""
    from srunit.report.runs import load_bench, load_study

    bench = make_report_bench(tmp_path / "b", tiny_data)
    summary = json.loads((bench / "summary.json").read_text())
    summary["rows"][0]["mean"]["acc_-30"] = 0.5
    (bench / "summary.json").write_text(json.dumps(summary))
    assert _said(load_bench(bench).warnings) == [
        "rows[0].mean.acc_-30 is not a score of Acc(delta): its delta is not an integer from 1 to 256 (got '-30'); "
        f"it is not shown: {FIX}"]
    study = load_study(_study(tmp_path / "t", t0_scores={"mean_iou": 0.3, "acc_0": 0.5}))
    assert _said(study.warnings) == [
        "trials[0].scores.acc_0 is not a score of Acc(delta): its delta is not an integer from 1 to 256 (got '0'); it "
        f"is not shown: {STUDY_FIX}"]
