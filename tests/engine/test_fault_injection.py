"""Fault injection: kill a real `srunit train` with SIGKILL at random moments, inside checkpoint writes
among them, resume after each kill, and check that the run ends bit-identical to one never killed.

Every checkpoint file is written in two halves with a pause between them
(SRUNIT_TEST_CHECKPOINT_WRITE_DELAY), so a kill can be aimed into a write: the test waits for a
temporary checkpoint folder to appear and kills at a random moment of the write. The other kills
come at random times after training starts. The delays come from a seeded generator.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

from srunit.config import config_from_dict
from srunit.engine.checkpoint import WRITE_DELAY_ENV
from srunit.methods import build_method
from srunit.runtime.network_files import load_network_weights
from srunit.runtime.run_folder import resolve_checkpoint

STEPS = 8
WRITE_DELAY = 0.1  # seconds in the middle of each of the 4 files of a checkpoint
ARGS = ["--preset", "cut", "--model.ngf", "4", "--model.ndf", "4", "--model.n_blocks", "6", "--model.projector_dim",
        "8", "--method.num_patches", "16", "--data.load_size", "36", "--data.crop_size", "32",
        "--data.num_workers", "0", "--train.device", "cpu", "--train.steps", str(STEPS), "--train.log_every", "1",
        "--train.checkpoint_every", "1", "--train.keep_every", "100", "--train.sample_every", "100", "--no-progress"]


def _start(args: list[str], log: Path, delay: float) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", WRITE_DELAY_ENV: str(delay)}
    with open(log, "a") as f:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "srunit", "train", *args], stdout=f, stderr=f, env=env)


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120) -> bool:
    """Poll ``condition`` until it holds (True) or the process ends (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the training process made no progress"
        time.sleep(0.005)
    return True


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


def _latest_step(run: Path) -> int:
    latest = run / "checkpoints" / "latest"
    return int(os.readlink(latest).split("_")[1]) if latest.is_symlink() else -1


def _writing(run: Path) -> bool:
    root = run / "checkpoints"
    return root.is_dir() and any(p.name.startswith(".tmp-step_") for p in root.iterdir())


def _state(run: Path) -> dict[str, object]:
    """Everything a checkpoint holds, as plain tensors and numbers: weights, optimizer states, step, RNG."""
    ckpt = resolve_checkpoint(run)
    out: dict[str, object] = {f"{f.stem}.{k}": v for f in sorted(ckpt.glob("*.safetensors"))
                              for k, v in load_file(str(f)).items()}
    state = torch.load(ckpt / "state.pt", weights_only=True)

    def flatten(prefix: str, obj: object) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                flatten(f"{prefix}.{k}", v)
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                flatten(f"{prefix}.{i}", v)
        else:
            out[prefix] = obj

    flatten("state", state)
    return out


def _equal(a: dict[str, object], b: dict[str, object]) -> list[str]:
    """The keys whose values differ (tensors bit for bit)."""
    diff = sorted(a.keys() ^ b.keys())
    for k in a.keys() & b.keys():
        x, y = a[k], b[k]
        same = torch.equal(x, y) if torch.is_tensor(x) and torch.is_tensor(y) else x == y
        if not same:
            diff.append(k)
    return diff


def _losses(run: Path) -> list[dict[str, float]]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in m.items() if k != "images_per_s"} for m in lines]


def test_sigkill_at_random_moments_and_resume_ends_bit_identical(tiny_data: Path, tmp_path: Path) -> None:
    base = [*ARGS, "--data.root", str(tiny_data), "--train.runs_dir", str(tmp_path)]
    reference = _start([*base, "--train.name", "reference"], tmp_path / "reference.log", 0.0)
    rng = random.Random(20240610)
    run, log = tmp_path / "killed", tmp_path / "killed.log"
    # Each kill waits until training has started and `latest` has reached a step, then (for a kill
    # inside a write) until the next checkpoint write has begun, then a random pause. The first
    # kill comes before any checkpoint is complete.
    plan = [(-1, False, 0.5), (2, True, 3 * WRITE_DELAY), (4, False, 1.5), (6, True, 3 * WRITE_DELAY)]
    kills = kills_in_writes = 0
    for attempt, (reached, in_write, span) in enumerate(plan):
        starts = _lines(run / "history.jsonl")
        args = [*base, "--train.name", "killed"] if attempt == 0 else ["--resume", str(run), "--no-progress"]
        proc = _start(args, log, WRITE_DELAY)
        if not _wait_for(lambda: _lines(run / "history.jsonl") > starts and _latest_step(run) >= reached,  # noqa: B023 - called here
                         proc):
            break  # ended first: see the log
        if in_write and not _wait_for(lambda: _writing(run), proc):
            break
        time.sleep(rng.uniform(0, span))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if proc.returncode != -signal.SIGKILL:
            break  # the run had ended by itself
        kills += 1
        kills_in_writes += _writing(run)
        # After any kill, `latest` (where it exists) is a whole checkpoint that loads.
        if (run / "checkpoints" / "latest").is_symlink():
            state = _state(run)
            assert "state.step" in state and any(k.startswith("G.") for k in state)
    assert kills == len(plan), log.read_text()  # every planned kill hit a training process
    assert kills_in_writes >= 2, log.read_text()
    final = _start(["--resume", str(run), "--no-progress"], log, 0.0)
    assert final.wait(timeout=300) == 0, log.read_text()
    assert reference.wait(timeout=300) == 0, (tmp_path / "reference.log").read_text()

    assert _equal(_state(run), _state(tmp_path / "reference")) == []
    assert (run / "checkpoints" / "latest").resolve().name == f"step_{STEPS:08d}"
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    # Each step logged once, with the losses of the uninterrupted run.
    assert _losses(run) == _losses(tmp_path / "reference")
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["event"] for h in history] == ["start"] + ["resume"] * len(plan)
    # The G weights load into the network the run config builds (a whole file, not a torn one).
    config = config_from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    load_network_weights(build_method(config.method, config.model).G, resolve_checkpoint(run) / "G.safetensors")
