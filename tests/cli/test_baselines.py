"""`srunit train` + `srunit translate` end to end for the CycleGAN and GcGAN presets (a few tiny steps)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image

from srunit.cli.main import main
from srunit.inference import load_generator


@pytest.fixture
def tiny_run_args(tiny_model_of: Callable[[str], list[str]], tiny_data: Path, tmp_path: Path) -> list[str]:
    return [*tiny_model_of("cyclegan"),  # and GcGAN's: neither has a projector
            "--data.root", str(tiny_data), "--data.load_size", "36", "--data.crop_size", "32",
            "--data.num_workers", "0", "--train.device", "cpu", "--train.runs_dir", str(tmp_path / "runs"),
            "--train.steps", "2", "--train.batch_size", "2", "--train.log_every", "1", "--no-progress"]


def test_cyclegan_trains_and_translates_both_ways(tiny_run_args: list[str], tiny_data: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--preset", "cyclegan", "--train.name", "cg", "--method.pool_size", "3",
                 *tiny_run_args]) == 0
    run = tmp_path / "runs" / "cg"
    latest = run / "checkpoints" / "latest"
    assert {p.name for p in latest.glob("*.safetensors")} == {"G.safetensors", "G_BA.safetensors",
                                                            "D_B.safetensors", "D_A.safetensors"}
    state = torch.load(latest / "state.pt", weights_only=True)
    assert state["method"]["pools"]["B"]["count"] == 3
    image = tiny_data / "testA" / "0000.png"
    outputs = {}
    for direction in ("AtoB", "BtoA"):
        out = tmp_path / direction
        assert main(["translate", "--checkpoint", str(run), "--input", str(image), "--output", str(out),
                     "--device", "cpu", "--direction", direction]) == 0
        with Image.open(out / "0000.png") as img:
            assert img.size == (40, 40)
            outputs[direction] = img.tobytes()
    assert outputs["AtoB"] != outputs["BtoA"]  # two different generators
    g_ba = load_generator(run, direction="BtoA")
    assert torch.equal(g_ba.layers[1].weight, load_generator(latest / "G_BA.safetensors").layers[1].weight)
    # A one-sided run has no B -> A generator: a clear error, exit 2.
    capsys.readouterr()
    assert main(["train", "--preset", "gcgan", "--train.name", "gc", *tiny_run_args]) == 0
    assert main(["translate", "--checkpoint", str(tmp_path / "runs" / "gc"), "--input", str(image), "--output",
                 str(tmp_path / "gc-out"), "--device", "cpu", "--direction", "BtoA"]) == 2
    assert "G_BA.safetensors is missing; this checkpoint has no B -> A generator" in capsys.readouterr().err


def test_gcgan_trains_and_translates(tiny_run_args: list[str], tiny_data: Path, tmp_path: Path) -> None:
    assert main(["train", "--preset", "gcgan", "--train.name", "gc", "--method.geometry", "vf",
                 "--method.share_generator", "false", *tiny_run_args]) == 0
    run = tmp_path / "runs" / "gc"
    assert {p.name for p in (run / "checkpoints" / "latest").glob("*.safetensors")} == {
        "G.safetensors", "G_gc.safetensors", "D.safetensors", "D_gc.safetensors"}
    assert (run / "samples" / "step_00000002.png").exists()
    out = tmp_path / "out"
    assert main(["translate", "--checkpoint", str(run), "--input", str(tiny_data / "testA"), "--output", str(out),
                 "--device", "cpu"]) == 0
    assert len(list(out.glob("*.png"))) == len(list((tiny_data / "testA").glob("*.png")))
