"""Round thirty (D): runs of one name in one report, and the tuning summary's words."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def _as_eval_run_writes_it(run: Path) -> None:
    """`srunit eval ... --run RUN` writes no "condition": the report then names the run by its folder."""
    record = json.loads((run / "eval" / "scores.json").read_text())
    del record["condition"]
    (run / "eval" / "scores.json").write_text(json.dumps(record))


@pytest.mark.slow  # builds a whole page and its figures; tests/report's pages of two runs run in the fast tier
def test_two_runs_of_one_folder_name_are_told_apart_in_every_place_the_report_names_a_run(
        tmp_path: Path, report_dataset: Path, make_report_run: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`report runs/c3 other2/c3`: only the Runs table showed the folders; the Evaluated runs rows, the IoU legend
    and the grid headers all said c3. Two bench runs of one record label keep it, followed by their folders."""
    import srunit.report.page as page
    from srunit.report import build_report, load_run, render_report
    from srunit.report.plots import iou_figure

    runs = [make_report_run(tmp_path / parent / "c3", data=report_dataset) for parent in ("runs", "other2")]
    for run in runs:
        _as_eval_run_writes_it(run)
    legends: list[list[str]] = []

    def spy(items: list[Any]) -> str:
        legends.append([t.get_text() for t in iou_figure(items).axes[0].get_legend().get_texts()])
        return ""

    monkeypatch.setattr(page, "iou_section", spy)
    html = build_report(runs, tmp_path / "r.html").read_text()
    evaluated = html.split("<h2>Evaluated runs</h2>")[1].split("</table>")[0]
    assert re.findall(r"<tr><td>([^<]*)</td>", evaluated) == ["runs/c3", "other2/c3"]
    assert re.findall(r"<th>([^<]*): translation / flips</th>", html) == ["runs/c3", "other2/c3"]
    assert legends == [["runs/c3", "other2/c3"]]
    loaded = [load_run(run) for run in runs]
    render_report(loaded, num_images=0)
    assert [r.label for r in loaded] == ["c3", "c3"]  # the caller's runs are not changed
    named = [make_report_run(tmp_path / b / "cut-s0", data=report_dataset) for b in ("b1", "b2")]
    html = render_report([load_run(r) for r in named], num_images=0)
    rows = re.findall(r"<tr><td>([^<]*)</td>", html.split("<h2>Evaluated runs</h2>")[1].split("</table>")[0])
    assert rows == ["cut / unmatched / seed 0 (b1/cut-s0)", "cut / unmatched / seed 0 (b2/cut-s0)"]
    same = load_run(runs[0])
    html = render_report([same, same], num_images=0)
    assert re.findall(r"<tr><td>([^<]*)</td>", html.split("<h2>Runs</h2>")[1].split("</table>")[0]) == \
        ["c3", "c3 (2)"]


def _tiny_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trials: int = 2, objective: str = "mean_iou") -> Any:
    """TuneSettings of a study of one parameter whose target needs no data (each test fakes Trials.run)."""
    from srunit.tune.study import TuneSettings
    from srunit.tune.targets import FolderTarget

    for folder in ("data", "val", "labels"):
        (tmp_path / folder).mkdir()
    monkeypatch.setattr(FolderTarget, "prepare", lambda self, out: None)
    monkeypatch.setattr(FolderTarget, "check", lambda self: None)
    target = FolderTarget(str(tmp_path / "data"), str(tmp_path / "val"), str(tmp_path / "labels"), "seg.onnx", 3)
    return TuneSettings(preset="cut", target=target.to_dict(), study_name="s", trials=trials, sampler="random",
                        objective=objective, space={"method.lambda_nce": {"low": 0.25, "high": 4.0, "log": True}})


@pytest.mark.slow  # 2 s: a study stopped by a signal, then continued
def test_a_trial_run_again_after_a_stop_is_not_shown_as_a_failure(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A trial stopped by a signal came back as the next trial with its parameters, but `tune`'s summary and the
    report listed it as "not finished: 0 (fail)", beside the trials whose parameters failed."""
    import optuna

    from srunit.cli.tune import format_summary
    from srunit.engine.signals import TrainingStopped
    from srunit.report import render_report
    from srunit.report.runs import load_study
    from srunit.tune.study import Trials, open_study, run_tune, study_summary

    settings = _tiny_study(tmp_path, monkeypatch)
    calls: list[dict[str, Any]] = []

    def run(self: Trials, params: dict[str, Any], seed: int, *, on_stop: Any = None) -> tuple[float, dict[str, Any]]:
        calls.append(params)
        if len(calls) == 1:
            on_stop()
            raise TrainingStopped(2, 1, tmp_path / "run" / "checkpoints" / "step_00000001", tmp_path / "run")
        return 0.041, {"runs": [str(len(calls))], "scores": {"mean_iou": 0.041}}

    monkeypatch.setattr(Trials, "run", run)
    with pytest.raises(TrainingStopped):
        run_tune(tmp_path / "out", settings)
    summary = run_tune(tmp_path / "out", settings)
    assert calls[1] == calls[0]
    assert "not finished: 0 (interrupted; run again as trial 1)" in format_summary(summary).splitlines()
    page = render_report([load_study(tmp_path / "out")], num_images=0)
    assert "Not finished: 0 (interrupted; run again as trial 1)." in page
    # A trial whose worker died is queued again by Optuna (its heartbeat went stale), with the first one's attributes.
    study = open_study(f"sqlite:///{(tmp_path / 'out' / 'study.db').resolve()}", settings)
    distributions = {"method.lambda_nce": optuna.distributions.FloatDistribution(0.25, 4.0, log=True)}
    fail, waiting = optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING
    for state, user, system in ((fail, {}, {}), (fail, {"resumes": 3}, {}),  # 3 stopped, 4 resumed it and died
                                (waiting, {"resumes": 3}, {"failed_trial": 4, "retry_history": [4]}),
                                (fail, {"from_records": True, "not_in_records": True}, {})):  # a gap in --records
        study.add_trial(optuna.create_trial(state=state, params={"method.lambda_nce": 1.0},
                                            distributions=distributions, user_attrs=user, system_attrs=system))
    rows = study_summary(study, settings, "study.db")["trials"]
    assert [(r["number"], r["state"], r.get("outcome")) for r in rows] == [
        (0, "FAIL", "interrupted; run again as trial 1"), (1, "COMPLETE", None), (2, "COMPLETE", None),
        (3, "FAIL", "interrupted; run again as trial 4"), (4, "FAIL", "its worker stopped; run again as trial 5"),
        (5, "WAITING", None),
        (6, "FAIL", "a gap: --records holds no run of this trial (it failed or stopped where they were made)")]


@pytest.mark.parametrize(("objective", "value", "shown", "axis"), [
    ("mean_iou", 0.041, "4.10%", "mean_iou (a fraction: 0.05 is 5%)"),
    ("flip_rate", 0.3, "30.00%", "flip_rate (a fraction: 0.05 is 5%)")])
def test_a_studys_score_has_one_unit_in_its_log_line_its_table_and_its_plots(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, objective: str,
        value: float, shown: str, axis: str) -> None:
    """The log line said `mean_iou = 0.0410`, tune's table `4.10` under `mean_iou`, the report `4.10` under
    `mIoU %`, and Optuna's plots 0.041 as "Objective Value"."""
    import optuna.visualization.matplotlib as optuna_plots

    from srunit.cli.tune import format_summary
    from srunit.tune.plots import PLOTS
    from srunit.tune.study import Trials, run_tune

    settings = _tiny_study(tmp_path, monkeypatch, trials=1, objective=objective)
    monkeypatch.setattr(Trials, "run", lambda self, params, seed, on_stop=None:
                        (value, {"runs": ["r"], "scores": {objective: value}}))
    names: list[str] = []
    for function, _, _ in PLOTS.values():
        real = getattr(optuna_plots, function)
        monkeypatch.setattr(optuna_plots, function,
                            lambda study, real=real, **kw: names.append(kw.get("target_name")) or real(study, **kw))
    with caplog.at_level("INFO", logger="srunit.tune.study"):
        summary = run_tune(tmp_path / "out", settings)
    assert f"trial 0: {objective} = {shown} (" in caplog.text
    assert f"| 0 | {shown} |" in format_summary(summary).splitlines()[3]
    assert names and set(names) == {axis}
    from srunit.tune.study import shown_score

    assert shown_score("dist", 61.25) == "61.25"  # Dist keeps its unit, as in the report


def test_every_page_the_code_points_to_is_where_it_says() -> None:
    """The learning-rate warning of an extended run pointed to "README: What survives what": README has no such
    section; the page is docs/what-survives-what.md. Every docs/*.md the package names exists, and every README
    section it names is a heading of README.md."""
    root = Path(__file__).resolve().parents[1]
    source = {p: p.read_text() for p in (root / "src" / "srunit").rglob("*.py")}
    pages = {(p.relative_to(root), m) for p, text in source.items() for m in re.findall(r"docs/[\w./-]+\.md", text)}
    assert pages and {(p, m) for p, m in pages if not (root / m).is_file()} == set()
    headings = {line.lstrip("#").strip() for line in (root / "README.md").read_text().splitlines()
                if line.startswith("#")}
    named = {(p.relative_to(root), m) for p, text in source.items()
             for m in re.findall(r"README(?:'s)?[:,]? \"?([A-Z][\w ]+?)\"?[),]", text)}
    assert {(p, m) for p, m in named if m not in headings} == set()
    page = (root / "docs" / "what-survives-what.md").read_text()
    assert "**Learning rate on resume.**" in page and "the learning rate of step N goes from X" in page


def test_the_grids_count_flips_as_the_scores_table_does(tmp_path: Path, report_dataset: Path,
                                                       make_report_run: Callable[..., Path]) -> None:
    """A pixel the segmenter gives none of the classes (SynthScapes' "not rendered") was a flip in the grid's
    "flipped X%" but not in the table's Flip % nor the flip figures (DRIT: table 1.36%, grids about 97%)."""
    import numpy as np
    from PIL import Image

    from srunit.report import build_report, flip_mask

    run = make_report_run(tmp_path / "runs" / "r", data=report_dataset)  # image a: 12 flips in its first row
    predicted = run / "eval" / "predicted" / "a.png"
    pred = np.asarray(Image.open(predicted)).copy()
    size = pred.shape[0]
    pred[1, :] = 7  # the second row: none of the 3 classes
    Image.fromarray(pred).save(predicted)
    html = build_report([run], tmp_path / "r.html").read_text()
    labelled = size * (size - 1)  # the last row is the ignore label
    shares = re.findall(r"<div>(flipped [^<]*)</div>", html)
    assert shares[0] == f"flipped {100 * 12 / labelled:.1f}%; none of the classes {100 * size / labelled:.1f}%"
    assert shares[1:] == ["flipped 0.0%", "flipped 0.0%"]  # images b and c
    assert "are not flips, and their share follows as <em>none of the classes</em>" in html
    labels = np.array([[0, 1], [2, 255]])
    assert flip_mask(np.array([[9, 0], [2, 9]]), labels, num_classes=3).tolist() == [[False, True], [False, False]]
    assert flip_mask(np.array([[9, 0], [2, 9]]), labels).tolist() == [[True, True], [False, False]]


def test_the_rows_of_two_benches_of_one_method_and_condition_are_told_apart_in_the_figures(
        tmp_path: Path, report_dataset: Path, make_report_bench: Callable[[Path, Path], Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A variant: `report a/bench b/bench` (two benchmarks of the same methods) drew "cut / unmatched" twice in the
    IoU legend and the flip and loss figures, one bar or curve of each bench under one name."""
    import srunit.report.page as page
    from srunit.report import build_report
    from srunit.report.plots import iou_figure

    benches = [make_report_bench(tmp_path / where / "bench", report_dataset) for where in ("a", "b")]
    legends: list[list[str]] = []
    monkeypatch.setattr(page, "iou_section", lambda items: legends.append(
        [t.get_text() for t in iou_figure(items).axes[0].get_legend().get_texts()]) or "")
    build_report(benches, tmp_path / "r.html", num_images=0)
    rows = ["cut / unmatched", "srunit / unmatched"]
    truth = "segmenter on ground-truth renderings"
    assert legends == [[f"{r} (a/bench)" for r in rows] + [f"{truth} (a/bench/upper_bound)"]
                       + [f"{r} (b/bench)" for r in rows] + [f"{truth} (b/bench/upper_bound)"]]
    run = benches[0] / "unmatched" / "cut-seed0"  # also given by itself: one folder twice, numbered, no path
    html = build_report([benches[0], run], tmp_path / "r2.html", num_images=0).read_text()
    runs = re.findall(r"<tr><td>([^<]*)</td>", html.split("<h2>Runs</h2>")[1].split("</table>")[0])
    assert runs[0] == "cut / unmatched / seed 0" and runs[-1] == "cut / unmatched / seed 0 (2)"
