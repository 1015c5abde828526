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
