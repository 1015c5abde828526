"""`srunit bench speed` and `srunit bench synthscapes` end to end (tiny settings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srunit.cli.main import main
from srunit.errors import ConfigError
from srunit.synthscapes import profile_settings


def test_bench_reports_throughput_json(tmp_path: Path, tiny_model_overrides: list[str],
                                      capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "b.json"
    assert (
        main(
            [
                "bench",
                "speed",
                "--preset",
                "srunit",
                "--size",
                "32",
                "--steps",
                "1",
                "--warmup",
                "1",
                "--device",
                "cpu",
                "--json",
                str(out),
                *[f"--{o}" for o in tiny_model_overrides],
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["images_per_s"] > 0 and result["peak_memory_gib"] > 0 and result["losses_finite"]
    # batch, processes, precision, compile, channels-last, activation checkpointing, device
    assert "| srunit | 32 | 1 | 1 | fp32 | no | no | no | cpu" in capsys.readouterr().out


def test_cli_bench_synthscapes_writes_the_report(
    tmp_path: Path, tiny_bench_segmenter: Path, tiny_model_overrides: list[str], capsys: pytest.CaptureFixture
) -> None:
    # tiny_bench_segmenter: the tiny segmenter stands in for the profile's one
    out = tmp_path / "b"
    assert (
        main(
            [
                "bench",
                "synthscapes",
                "--methods",
                "cut,fastcut",
                "--conditions",
                "unmatched",
                "--seeds",
                "2",
                "--size",
                "32",
                "--steps",
                "2",
                "--num-pool",
                "16",
                "--num-test",
                "2",
                "--device",
                "cpu",
                "--out",
                str(out),
                "--no-progress",
                *[f"--{o}" for o in tiny_model_overrides],
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "| cut | unmatched | 2 |" in text and f"report: {out / 'report.html'}" in text
    # FastCUT minus CUT, paired by seed (2 pairs: an interval exists), and the per-class IoU table.
    assert "Difference from cut, paired by seed" in text and "| fastcut | unmatched | 2 | " in text
    assert "| method | data | sky | building |" in text
    summary = json.loads((out / "summary.json").read_text())
    assert [(d["method"], d["seeds"]) for d in summary["differences"]] == [("fastcut", [0, 1])]
    settings = json.loads((out / "settings.json").read_text())
    assert "model.ngf=4" in settings["overrides"] and settings["steps"] == 2
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") > 3
    assert (
        "<h3>Difference from cut, paired by seed</h3>" in page
        and "<td>fastcut</td><td>unmatched</td><td>2</td>" in page
    )

    assert main(["bench", "synthscapes", "--methods", "nope", "--out", str(tmp_path / "c")]) == 2
    assert "unknown method preset 'nope'" in capsys.readouterr().err


def test_gpu_profile_runs_when_shrunk(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # The GPU-sized profile (full-size networks, 256 NCE patches) on the CPU, cut down to seconds.
    out = tmp_path / "g"
    assert (
        main(
            [
                "bench",
                "synthscapes",
                "--profile",
                "gpu",
                "--methods",
                "cut",
                "--conditions",
                "matched",
                "--seeds",
                "1",
                "--size",
                "32",
                "--steps",
                "1",
                "--num-pool",
                "16",
                "--num-test",
                "1",
                "--segmenter-steps",
                "1",
                "--segmenter-images",
                "2",
                "--device",
                "cpu",
                "--out",
                str(out),
                "--cache-dir",
                str(tmp_path / "cache"),
                "--no-progress",
                "--no-report",
            ]
        )
        == 0
    )
    settings = json.loads((out / "settings.json").read_text())
    assert settings["overrides"] == [] and settings["segmenter"]["steps"] == 1 and settings["segmenter"]["size"] == 32
    config = (out / "matched" / "cut-seed0" / "config.yaml").read_text()
    assert "ngf: 64" in config and "n_blocks: 9" in config and "| cut | matched | 1 |" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="--segmenter-steps"):
        profile_settings("gpu", segmenter_steps=0)
    assert main(["bench", "synthscapes", "--segmenter-steps", "0", "--out", str(tmp_path / "s")]) == 2
    assert "--segmenter-steps must be an integer from 1 to 1,000,000,000,000, got 0" in capsys.readouterr().err


def test_bench_loader_prints_and_writes_the_throughput(
    tmp_path: Path, tiny_data: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "loader.json"
    assert (
        main(
            [
                "bench",
                "loader",
                "--preset",
                "cut",
                "--data.root",
                str(tiny_data),
                "--data.load_size",
                "36",
                "--data.crop_size",
                "32",
                "--data.num_workers",
                "0",
                "--batches",
                "3",
                "--warmup",
                "0",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    assert "| 0 | 1 | resize_and_crop | 36 | 32 |" in capsys.readouterr().out
    assert json.loads(out.read_text())["images_per_s"] > 0


def test_matched_mix_without_the_matched_condition_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--matched-mix changed nothing on unmatched data, without a word."""
    # --baseline nosuch: were --matched-mix let through, the command stops at the next check, not in training.
    assert main(["bench", "synthscapes", "--conditions", "unmatched", "--matched-mix", "50", "--baseline", "nosuch",
                 "--out", str(tmp_path / "b")]) == 2
    assert ("--matched-mix 50 applies to the matched condition only, and --conditions is unmatched; add matched to "
            "--conditions") in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
