"""`srunit report` end to end: a bench folder's report, and the errors of the command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srunit.cli.main import main


def test_bench_report_through_the_cli(tmp_path: Path, report_dataset: Path, make_report_bench, check_report_page,
                                      file_snapshot, capsys: pytest.CaptureFixture) -> None:
    bench = make_report_bench(tmp_path / "bench", report_dataset)
    before = file_snapshot(bench)
    assert main(["report", str(bench)]) == 0
    out = bench / "report.html"
    assert str(out) in capsys.readouterr().out
    assert file_snapshot(bench) == {**before, "report.html": file_snapshot(bench)["report.html"]}
    page = check_report_page(out)
    text = page.text
    for cell in ("71.00 \u00b1 1.00", "60.10 \u00b1 1.50", "76.50", "95.00", "85.00",
                 "segmenter on ground-truth renderings", "srunit bench synthscapes --methods cut,srunit --seeds 2",
                 "2-core Xeon, CPU"):
        assert cell in text
    # One grid column per bench row (first seed) plus the upper bound: cut-seed0 flips 6/132 pixels.
    assert "flipped 4.5%" in text and "flipped 9.1%" not in text
    assert sum((a["alt"] or "").startswith("source ") for a in page.images) == 3


def test_report_errors(tmp_path: Path, make_report_run, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "nope"
    assert main(["report", str(missing)]) == 2
    assert f"{missing} does not exist" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty)]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "summary.json" in err
    assert not (empty / "report.html").exists()
    run = make_report_run(tmp_path / "run", "cut")
    assert main(["report", str(run), str(run)]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["report", str(run), "--images", "-1"]) == 2
    assert "--images" in capsys.readouterr().err
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "summary.json").write_text(json.dumps({"format": "srunit-bench/1", "rows": [{"runs": ["gone"]}]}))
    assert main(["report", str(bench)]) == 2
    assert str(bench / "gone") in capsys.readouterr().err
