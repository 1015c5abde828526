"""benchmarks/: the speed comparison script runs end to end (ours only: the public code is not here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_speed_table_of_our_code(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "speed_vs_public.py"), "--device", "cpu", "--size", "32",
         "--presets", "cut", "--variants", "fp32", "--rounds", "1", "--steps", "1", "--warmup", "1",
         "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| srunit |")]
    assert (
        len(rows) == 1 and "| cut | fp32 | 1 | 1 |" in rows[0] and "| - |" in rows[0]
    )  # no public rows to compare with
    assert "srunit-cut-fp32-b1-p1-r0: " in done.stdout  # each measurement reported as it finishes
    measured = json.loads((tmp_path / "srunit-cut-fp32-b1-p1-r0.json").read_text())
    assert measured["images_per_s"] > 0 and measured["world_size"] == 1


def test_public_harness_refuses_a_folder_without_the_public_code(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "public_speed.py"), "--code", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "not a checkout of the public SRUNIT code" in done.stderr
