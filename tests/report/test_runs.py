"""srunit.report.runs: reading metrics of run folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srunit.errors import DataError
from srunit.report import load_metrics


def test_metrics_repeated_step_keeps_the_last_value(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    lines = [{"step": 50, "G": 3.0}, {"step": 100, "G": 2.0}, {"step": 100, "G": 1.5, "robust": 0.1},
             {"step": 150, "G": 1.0}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + "\n")
    assert load_metrics(path) == {50: {"G": 3.0}, 100: {"G": 1.5, "robust": 0.1}, 150: {"G": 1.0}}
    path.write_text('{"step": 1, "G": 1.0}\n{"G": 2.0}\n')
    with pytest.raises(DataError, match="line 2"):
        load_metrics(path)


def _run_with_scores(folder: Path, make_report_run, edit) -> Path:
    run = make_report_run(folder, "cut", label="cut / unmatched / seed 0")
    scores = json.loads((run / "eval" / "scores.json").read_text())
    edit(scores)
    (run / "eval" / "scores.json").write_text(json.dumps(scores))
    return run


# A bad leaf of each part in the fast tier; a part of the wrong type, and the other leaves, in the full suite.
@pytest.mark.parametrize(("edit", "named"), [
    (lambda s: s["segmentation"].update(pixel_accuracy="0.7x"), "segmentation.pixel_accuracy"),
    pytest.param(lambda s: s["segmentation"].update(mean_iou=None), "segmentation.mean_iou", marks=pytest.mark.slow),
    pytest.param(lambda s: s.update(segmentation="broken"), "segmentation", marks=pytest.mark.slow),
    pytest.param(lambda s: s.update(paired=[1, 2]), "paired", marks=pytest.mark.slow),
    (lambda s: s["paired"].update(acc={"30": "high"}), "paired.acc.30"),
    pytest.param(lambda s: s["paired"].update(dist=True), "paired.dist", marks=pytest.mark.slow),
])
def test_damaged_scores_are_listed_as_not_read_not_shown_as_a_dash(tmp_path: Path, make_report_run, edit,
                                                                   named: str, check_report_page) -> None:
    from srunit.report import build_report
    from srunit.report.runs import load_run

    run = _run_with_scores(tmp_path / "run", make_report_run, edit)
    loaded = load_run(run)
    assert any(f"{run / 'eval' / 'scores.json'}: {named} is not a finite number" in w or
               f"{run / 'eval' / 'scores.json'}: {named} is not an object" in w for w in loaded.warnings), \
        loaded.warnings
    page = check_report_page(build_report([run], tmp_path / "r.html"))
    assert "Not read" in page.text and named in page.text
    assert "None" not in page.text


def test_metrics_values_that_are_not_numbers_are_named(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "G": 1.0, "D": "x"}\n{"step": 2, "G": null}\n')
    warnings: list[str] = []
    assert load_metrics(path, warnings) == {1: {"G": 1.0}, 2: {}}
    assert warnings == [f"{path} line 1: \"D\" is not a number (got \"x\"); the value is left out of the curves",
                        f"{path} line 2: \"G\" is not a number (got null); the value is left out of the curves"]


def test_a_run_config_with_a_huge_integer_is_listed_as_not_read(tmp_path: Path, make_report_run) -> None:
    from srunit.report.runs import load_run

    run = make_report_run(tmp_path / "run", "cut", label="cut / unmatched / seed 0")
    (run / "config.yaml").write_text("method: {name: cut}\ntrain: {seed: " + "7" * 10_000 + "}\n")
    loaded = load_run(run)
    assert loaded.method == "cut"  # from the eval record
    assert any(f"{run / 'config.yaml'}: line 2: an integer of 10000 digits" in w for w in loaded.warnings)


def test_json_files_with_integers_of_thousands_of_digits_are_not_read(tmp_path: Path, make_report_run) -> None:
    from srunit.report.runs import load_run

    run = make_report_run(tmp_path / "run", "cut", label="cut / unmatched / seed 0")
    (run / "eval" / "scores.json").write_text('{"format": "srunit-eval/1", "seed": ' + "9" * 10_000 + "}")
    (run / "metrics.jsonl").write_text('{"step": 1, "G": 1.0}\n{"step": ' + "9" * 10_000 + "}\n")
    loaded = load_run(run)
    assert loaded.scores is None and loaded.metrics == {1: {"G": 1.0}}
    assert any(f"{run / 'eval' / 'scores.json'} is not valid JSON" in w for w in loaded.warnings)
    assert any(f"{run / 'metrics.jsonl'} line 2 is not valid JSON" in w for w in loaded.warnings)
