"""The `srunit` command line end to end: train, resume, translate, errors, help."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from conftest import TINY_MODEL
from srunit.cli.main import main

SMALL = [*(f"--{o.split('=')[0]}={o.split('=')[1]}" for o in TINY_MODEL), "--method.num_patches", "16",
         "--data.load_size", "36", "--data.crop_size", "32", "--data.num_workers", "0", "--train.device", "cpu",
         "--train.log_every", "1", "--train.checkpoint_every", "1", "--no-progress"]


def test_train_resume_translate(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    runs = tmp_path / "runs"
    args = ["train", "--preset", "srunit", "--data.root", str(tiny_data), "--train.runs_dir", str(runs),
            "--train.name", "e2e", "--train.steps", "2", "--train.batch_size", "2", *SMALL]
    assert main(args) == 0
    assert "run folder:" in capsys.readouterr().out
    run = runs / "e2e"
    assert main(["train", "--resume", str(run), "--train.steps", "3", "--no-progress"]) == 0
    assert (run / "checkpoints" / "latest").resolve().name == "step_00000003"
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["steps"] == 2  # the original record

    # translate a folder with a sub-folder and odd sizes at native resolution
    inp = tmp_path / "in"
    (inp / "sub").mkdir(parents=True)
    shutil.copy(tiny_data / "testA" / "0000.png", inp / "a.png")
    Image.new("RGB", (45, 37), (30, 60, 90)).save(inp / "sub" / "b.jpg")
    out = tmp_path / "out"
    assert main(["translate", "--checkpoint", str(run), "--input", str(inp), "--output", str(out),
                 "--batch-size", "2", "--device", "cpu"]) == 0
    assert Image.open(out / "a.png").size == (40, 40)
    assert Image.open(out / "sub" / "b.png").size == (45, 37)
    # a single checkpoint folder and a G.safetensors file work too
    step = run / "checkpoints" / "step_00000003"
    assert main(["translate", "--checkpoint", str(step / "G.safetensors"), "--input", str(inp / "a.png"),
                 "--output", str(tmp_path / "out2")]) == 0
    assert (tmp_path / "out2" / "a.png").exists()


def test_dry_run_prints_resolved_config(capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--preset", "fastcut", "--train.batch_size", "4", "--method.robust.weight=1"]) == 2
    assert "unknown key method.robust" in capsys.readouterr().err
    assert main(["train", "--preset", "srunit-official", "--train.batch_size", "4", "--dry-run"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["train"]["batch_size"] == 4
    assert cfg["method"]["robust"] == {**cfg["method"]["robust"], "weight": 1e-3, "max_noise": 1e-3,
                                       "sample_one_layer": True, "noise": "official", "warmup": "freeze"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--train.batch_sz", "4"], "unknown key train.batch_sz; allowed keys in train:"),
        (["--train.batch_size", "two"], "train.batch_size: invalid value 'two'; allowed: an integer"),
        (["--method.gan_mode", "wgan"], "method.gan_mode: invalid value 'wgan'; allowed: lsgan, vanilla, hinge"),
        (["--data.preprocess", "zoom"], "data.preprocess: invalid value 'zoom'"),
        (["--data.crop_size", "300"], "data.crop_size 300 is larger than data.load_size 286"),
        (["--preset", "pix2pix"], "unknown preset 'pix2pix'; known: cut, fastcut, srunit, srunit-official"),
        (["--train.batch_size"], "needs a value"),
        (["--bogus"], "unrecognized argument '--bogus'"),
        ([], "no training data given: set data.root"),
    ],
)
def test_config_errors_name_key_value_and_fix(args: list[str], message: str, capsys: pytest.CaptureFixture,
                                              tmp_path: Path) -> None:
    assert main(["train", "--train.runs_dir", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err


def test_data_errors_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "d"
    (root / "trainA").mkdir(parents=True)
    assert main(["train", "--data.root", str(root), "--train.runs_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "trainA" in err and "no image" in err.lower()
    assert main(["train", "--data.root", str(tmp_path / "nope"), "--train.runs_dir", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_help_lists_every_subcommand_and_config_key(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("train", "translate", "demo", "bench", "eval", "data", "report"):
        assert cmd in out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for key in ("--train.batch_size", "--data.root", "--method.robust.weight", "--model.feature_layers",
                "--method.nce_negatives"):
        assert key in out
    assert "beta, the coefficient" in out  # field comments become help text
    for cmd in ("translate", "demo", "bench speed", "bench synthscapes", "report", "data synthscapes"):
        with pytest.raises(SystemExit):
            main([*cmd.split(), "--help"])
        assert "usage: srunit " + cmd in capsys.readouterr().out


def test_bench_reports_throughput_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "b.json"
    assert main(["bench", "speed", "--preset", "srunit", "--size", "32", "--steps", "1", "--warmup", "1", "--device", "cpu",
                 "--json", str(out), *[f"--{o}" for o in TINY_MODEL]]) == 0
    result = json.loads(out.read_text())
    assert result["images_per_s"] > 0 and result["peak_memory_gib"] > 0 and result["losses_finite"]
    assert "| srunit | 32 | 1 | cpu" in capsys.readouterr().out


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "srunit"
    result = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("srunit ")
