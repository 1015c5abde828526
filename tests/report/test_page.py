"""srunit.report.page: the self-contained HTML report of run folders."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from srunit.errors import ConfigError
from srunit.report import build_report


def test_report_of_two_runs(tmp_path: Path, report_dataset: Path, make_report_run, check_report_page,
                            file_snapshot) -> None:
    cut = make_report_run(tmp_path / "runs" / "cut", "cut", data=report_dataset, pixel_accuracy=0.71)
    sr = make_report_run(tmp_path / "runs" / "srunit", "srunit", data=report_dataset, pixel_accuracy=0.765, flips=0)
    before = file_snapshot(tmp_path / "runs")
    out = build_report([cut, sr], tmp_path / "out" / "both.html", num_images=2)
    assert out == tmp_path / "out" / "both.html"
    assert file_snapshot(tmp_path / "runs") == before
    page = check_report_page(out)
    for number in ("71.00", "76.50", "52.00", "40.00", "61.20", "41.00", "60.00"):
        assert number in page.text
    for heading in ("pixAcc %", "clsAcc %", "mIoU %", "Dist", "Acc(30) %", "Acc(50) %", "Per-class IoU",
                    "Training losses", "Translations"):
        assert heading in page.text
    # 12 of the 132 labelled pixels of image 'a' flipped for cut, none for srunit; the ignore row never counts.
    assert "flipped 9.1%" in page.text and "flipped 0.0%" in page.text
    alts = [a["alt"] or "" for a in page.images]
    assert sum(a.startswith("source ") for a in alts) == 2  # --images 2
    assert sum(a.startswith("ground truth ") for a in alts) == 2
    with Image.open(io.BytesIO(base64.b64decode(page.images[-1]["src"].split(",", 1)[1]))) as cell:
        assert cell.width >= 128 and cell.width % 12 == 0  # upscaled by an integer factor


def test_run_without_eval_shows_loss_curves_only(tmp_path: Path, make_report_run, check_report_page) -> None:
    run = make_report_run(tmp_path / "run", "srunit")
    out = build_report([run])
    assert out == run / "report.html"
    page = check_report_page(out)
    assert [a["alt"] for a in page.images] == ["loss curves"]
    assert "Training losses" in page.text and "Per-class IoU" not in page.text and "Translations" not in page.text
    assert "pixAcc %" not in page.text


@pytest.mark.slow  # builds two whole pages; test_report_of_two_runs runs in the fast tier
def test_a_run_given_twice_is_shown_once(tmp_path: Path, report_dataset: Path, make_report_run, check_report_page,
                                        caplog: pytest.LogCaptureFixture) -> None:
    """The same run given directly and through a link (or spelt twice) was shown twice: a second row, curve and
    translations, under the link's name."""
    run = make_report_run(tmp_path / "run", "srunit", data=report_dataset)
    (tmp_path / "link").symlink_to(run)
    once = check_report_page(build_report([run], tmp_path / "once.html", num_images=1))
    with caplog.at_level("WARNING", logger="srunit"):
        twice = check_report_page(build_report([run, tmp_path / "link", tmp_path / "." / "run"], tmp_path / "r.html",
                                               num_images=1))
    assert len(twice.images) == len(once.images) and "link" not in twice.text
    assert f"PATH {tmp_path / 'link'} is {run}, given before; it is shown once" in caplog.text
    # `tmp/./run` and `run/` read as `run` itself: the warning said "PATH run is run, given before"
    assert f"PATH {run} is given twice; it is shown once" in caplog.text and f"{run} is {run}" not in caplog.text
    assert build_report([run, run]) == run / "report.html"  # one folder: its own report.html, as for one PATH


def test_report_output_must_be_a_file(tmp_path: Path, make_report_run) -> None:
    run = make_report_run(tmp_path / "run", "cut")
    with pytest.raises(ConfigError, match="is a folder"):
        build_report([run], out=tmp_path)


def test_tex_characters_in_names_and_keys_are_shown_literally(tmp_path: Path, report_dataset: Path,
                                                              make_report_run) -> None:
    """Names with a pair of "$" are mathtext to matplotlib; invalid TeX made the report crash."""
    import json

    from srunit.report import build_report

    run = make_report_run(tmp_path / "run $\\frac{a}{$", "cut", data=report_dataset,
                          label="seed $x^{$ \\alpha")
    metrics = run / "metrics.jsonl"
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    metrics.write_text("".join(json.dumps({**line, "loss $\\sqrt{$": 1.0}) + "\n" for line in lines))
    out = build_report([run], tmp_path / "r.html")
    assert "loss curves" in out.read_text() and "per-class IoU" in out.read_text()
