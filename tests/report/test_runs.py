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
