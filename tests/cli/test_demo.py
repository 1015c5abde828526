"""`srunit demo`: the small SynthScapes benchmark with its report (tiny segmenter, 2 steps)."""

from __future__ import annotations

from pathlib import Path

import pytest

from srunit.cli.main import main


def test_cli_demo_writes_the_report(tmp_path: Path, tiny_bench_segmenter: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["demo", "--runs-dir", str(tmp_path), "--name", "d", "--methods", "cut", "--steps", "2",
                 "--size", "32", "--device", "cpu", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert f"report: {tmp_path / 'd' / 'report.html'}" in text and "| cut | unmatched | 1 |" in text
    assert "One seed per method: a difference between the rows above is not a finding" in text
