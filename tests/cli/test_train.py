"""`srunit train` end to end: train, resume, translate the result; data errors through the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from PIL import Image

from srunit.cli.main import main


@pytest.fixture
def small(tiny_model_overrides: list[str]) -> list[str]:
    """The tiny settings as command-line options."""
    return [*(f"--{o.split('=')[0]}={o.split('=')[1]}" for o in tiny_model_overrides), "--method.num_patches", "16",
            "--data.load_size", "36", "--data.crop_size", "32", "--data.num_workers", "0", "--train.device", "cpu",
            "--train.log_every", "1", "--train.checkpoint_every", "1", "--no-progress"]


def test_train_resume_translate(
    tiny_data: Path, tmp_path: Path, small: list[str], capsys: pytest.CaptureFixture
) -> None:
    runs = tmp_path / "runs"
    args = [
        "train",
        "--preset",
        "srunit",
        "--data.root",
        str(tiny_data),
        "--train.runs_dir",
        str(runs),
        "--train.name",
        "e2e",
        "--train.steps",
        "2",
        "--train.batch_size",
        "2",
        *small,
    ]
    assert main(args) == 0
    assert "run folder:" in capsys.readouterr().out
    run = runs / "e2e"
    assert main(["train", "--resume", str(run), "--train.steps", "3", "--no-progress"]) == 0
    assert (run / "checkpoints" / "latest").resolve().name == "step_00000003"
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["steps"] == 3  # the extension is recorded

    # translate a folder with a sub-folder and odd sizes at native resolution
    inp = tmp_path / "in"
    (inp / "sub").mkdir(parents=True)
    shutil.copy(tiny_data / "testA" / "0000.png", inp / "a.png")
    Image.new("RGB", (45, 37), (30, 60, 90)).save(inp / "sub" / "b.jpg")
    out = tmp_path / "out"
    assert (
        main(
            [
                "translate",
                "--checkpoint",
                str(run),
                "--input",
                str(inp),
                "--output",
                str(out),
                "--batch-size",
                "2",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert Image.open(out / "a.png").size == (40, 40)
    assert Image.open(out / "sub" / "b.png").size == (45, 37)
    # a single checkpoint folder and a G.safetensors file work too
    step = run / "checkpoints" / "step_00000003"
    assert (
        main(
            [
                "translate",
                "--checkpoint",
                str(step / "G.safetensors"),
                "--input",
                str(inp / "a.png"),
                "--output",
                str(tmp_path / "out2"),
            ]
        )
        == 0
    )
    assert (tmp_path / "out2" / "a.png").exists()
    # A bad --batch-size is a usage error naming the option and the value (exit 2, nothing written).
    assert (
        main(
            [
                "translate",
                "--checkpoint",
                str(run),
                "--input",
                str(inp),
                "--output",
                str(tmp_path / "out3"),
                "--batch-size",
                "0",
                "--device",
                "cpu",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "srunit translate: error: --batch-size must be an integer from 1 to 65,536, got 0; " in err
    assert not (tmp_path / "out3").exists()


def test_data_errors_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "d"
    (root / "trainA").mkdir(parents=True)
    assert main(["train", "--data.root", str(root), "--train.runs_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "trainA" in err and "no image" in err.lower()
    assert main(["train", "--data.root", str(tmp_path / "nope"), "--train.runs_dir", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
