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
    other = make_report_run(tmp_path / "other", "srunit")
    assert main(["report", str(run), str(other)]) == 2
    assert "2 PATHs given without --out" in capsys.readouterr().err
    assert main(["report", str(run), "--images", "-1"]) == 2
    assert "--images" in capsys.readouterr().err
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "summary.json").write_text(json.dumps({"format": "srunit-bench/1", "rows": [{"runs": ["gone"]}]}))
    assert main(["report", str(bench)]) == 2
    assert str(bench / "gone") in capsys.readouterr().err


def test_own_evaluation_of_a_run_in_the_report(tmp_path: Path, tiny_data: Path, tiny_model_overrides: list[str],
                                               python_segmenter: Path, check_report_page,
                                               capsys: pytest.CaptureFixture) -> None:
    """train -> translate -> eval seg/paired --run -> report: scores, named per-class IoU and a grid of
    source | translation (flips marked) | ground truth; a run without evaluation shows its samples."""
    tiny = [
        "--data.root",
        str(tiny_data),
        "--data.load_size",
        "36",
        "--data.crop_size",
        "32",
        "--data.num_workers",
        "0",
        "--train.device",
        "cpu",
        "--train.runs_dir",
        str(tmp_path / "runs"),
        "--train.steps",
        "2",
        "--train.sample_every",
        "2",
        "--no-progress",
        *[f"--{o}" for o in tiny_model_overrides],
    ]
    assert main(["train", "--preset", "cut", "--train.name", "mine", *tiny]) == 0
    assert main(["train", "--preset", "cut", "--train.name", "other", *tiny]) == 0
    run = tmp_path / "runs" / "mine"
    assert (
        main(
            [
                "translate",
                "--checkpoint",
                str(run),
                "--input",
                str(tiny_data / "testA"),
                "--output",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    names = tmp_path / "classes.txt"
    names.write_text("\n".join(f"kind{i}" for i in range(8)) + "\n")
    assert (
        main(
            [
                "eval",
                "seg",
                "--images",
                str(tmp_path / "out"),
                "--labels",
                str(tiny_data / "testLabels"),
                "--segmenter",
                f"{python_segmenter}:segment",
                "--classes",
                "8",
                "--class-names",
                str(names),
                "--run",
                str(run),
                "--sources",
                str(tiny_data / "testA"),
            ]
        )
        == 0
    )
    assert (
        main(
            ["eval", "paired", "--pred", str(tmp_path / "out"), "--target", str(tiny_data / "testB"), "--run", str(run)]
        )
        == 0
    )
    capsys.readouterr()
    record = json.loads((run / "eval" / "scores.json").read_text())
    assert record["format"] == "srunit-eval/1" and record["method"] == "cut" and record["label"] == "mine"
    assert {"segmentation", "paired"} <= set(record) and record["class_names"][0] == "kind0"
    assert set(record["images"]) == {"translated", "labels", "predicted", "source", "target"}
    # The run's own folders relative to RUN/eval/, the user's data (outside the run) by absolute name.
    assert {k: record["images"][k] for k in ("translated", "predicted")} == {"translated": "translated",
                                                                             "predicted": "predicted"}
    assert record["images"]["source"] == str((tiny_data / "testA").resolve())
    assert (
        len(list((run / "eval" / "translated").iterdir())) == 2
        and len(list((run / "eval" / "predicted").iterdir())) == 2
    )
    (run / "eval" / "seg.json").write_text("{}")  # a file the report does not read: named, not skipped silently
    out = tmp_path / "r.html"
    assert main(["report", str(run), str(tmp_path / "runs" / "other"), "--out", str(out)]) == 0
    page = check_report_page(out)
    text = page.text
    assert "Evaluated runs" in text and "Per-class IoU" in text and "flipped " in text
    assert "SynthScapes" not in text  # the captions describe this run's data, not the benchmark's
    assert str(tiny_data / "testA") in text and str(tiny_data / "testB") in text
    alts = [a["alt"] or "" for a in page.images]
    assert sum(a.startswith("source ") for a in alts) == 2 and sum(a.startswith("ground truth ") for a in alts) == 2
    assert "other training samples" in alts and "Latest samples" in text
    assert f"{run / 'eval' / 'seg.json'} is not read" in text
    # Moved without its data, the run still shows its grid: its own images by relative name, the data by absolute.
    (run / "eval" / "seg.json").unlink()
    moved = tmp_path / "elsewhere" / "mine"
    moved.parent.mkdir()
    run.rename(moved)
    assert main(["report", str(moved), "--out", str(out), "--overwrite"]) == 0
    alts = [a["alt"] or "" for a in check_report_page(out).images]
    assert sum(a.startswith("source ") for a in alts) == 2 and sum(a.startswith("ground truth ") for a in alts) == 2
