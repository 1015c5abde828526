"""`srunit train` under stress: refused arguments, a diverging run and SIGTERM, through the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from srunit.cli.main import main
from srunit.engine.runner import StepRunner

TINY = ["--model.ngf", "4", "--model.ndf", "4", "--model.n_blocks", "6", "--model.projector_dim", "8",
        "--method.num_patches", "16", "--data.load_size", "36", "--data.crop_size", "32", "--data.num_workers", "0",
        "--train.device", "cpu"]


def _train_args(data: Path, runs: Path, name: str, *extra: str) -> list[str]:
    return ["train", "--preset", "cut", "--data.root", str(data), "--train.runs_dir", str(runs), "--train.name", name,
            *TINY, *extra]


def test_resume_refuses_a_preset_and_a_new_name(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(_train_args(tiny_data, tmp_path, "r", "--train.steps", "1", "--no-progress")) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "r"), "--preset", "srunit", "--no-progress"]) == 2
    assert "--preset cannot be combined with --resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "r"), "--train.name", "x", "--no-progress"]) == 2
    assert "train.name cannot change on --resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "r"), "--train.steps", "2", "--no-progress"]) == 0


def test_a_diverging_run_exits_non_zero_naming_the_step(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    original = StepRunner.train_step

    def train_step(self: StepRunner, batch):
        if self.step == 1:
            with torch.no_grad():
                self.method.G.layers[1].weight.fill_(float("nan"))
        return original(self, batch)

    monkeypatch.setattr(StepRunner, "train_step", train_step)
    assert main(_train_args(tiny_data, tmp_path, "nan", "--train.steps", "3", "--no-progress")) == 2
    err = capsys.readouterr().err
    assert "srunit train: error: non-finite loss at step 2" in err and "no checkpoint had been written" in err
    assert not (tmp_path / "nan" / "checkpoints" / "latest").exists()


def _read_until(stream, pattern: str, seen: list[str], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    for line in stream:
        seen.append(line)
        if pattern in line:
            return
        assert time.monotonic() < deadline, "".join(seen)
    raise AssertionError(f"{pattern!r} never printed:\n{''.join(seen)}")


def test_sigterm_checkpoints_and_exits_143_and_the_log_is_plain_lines(tiny_data: Path, tmp_path: Path) -> None:
    """A real process without a terminal: a start-up summary, one plain line per log_every steps (no
    carriage returns), and on SIGTERM a checkpoint of the step it was in, a message and exit 143.
    SIGTERM goes to the whole process group, loader workers included, as schedulers send it."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "srunit",
        *_train_args(
            tiny_data,
            tmp_path,
            "term",
            "--train.steps",
            "500",
            "--train.log_every",
            "1",
            "--train.checkpoint_every",
            "1000",
            "--data.num_workers",
            "1",
        ),
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    seen: list[str] = []
    try:
        _read_until(proc.stderr, "step 2/500", seen)
        os.killpg(proc.pid, signal.SIGTERM)
        out, rest = proc.communicate(timeout=120)
    finally:
        proc.kill()
    err = "".join(seen) + rest
    assert proc.returncode == 143, err
    stopped = [line for line in err.splitlines() if "stopped by SIGTERM after step" in line]
    assert len(stopped) == 1 and "srunit train --resume" in stopped[0], err
    step = int(stopped[0].split("after step ")[1].split(";")[0])
    assert step >= 2
    assert (tmp_path / "term" / "checkpoints" / "latest").resolve().name == f"step_{step:08d}"
    assert "\r" not in err
    for expected in (
        "run folder",
        "data: A 11 images, B 11 images",
        "steps 0 -> 500 of 500",
        "global batch 1",
        "device cpu, precision fp32",
    ):
        assert expected in err, expected
    logged = [line.split("step ")[1].split()[0] for line in err.splitlines() if " srunit.train: step " in line]
    assert logged == [f"{s}/500" for s in range(1, step + 1)], err
