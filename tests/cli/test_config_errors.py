"""`srunit train` configuration: the resolved config of --dry-run, and errors that name key, value and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from srunit.cli.main import main
from srunit.config import preset_names


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
        (["--preset", "pix2pix"], "unknown preset 'pix2pix'; known: " + ", ".join(preset_names())),
        (["--train.batch_size"], "needs a value"),
        (["--bogus"], "unrecognized argument '--bogus'"),
        ([], "no training data given: set data.root"),
        (["--data.preprocess", "none", "--train.batch_size", "2"],
         "data.preprocess 'none' keeps each image's own size, so images cannot be batched (train.batch_size 2)"),
        (["--train.device", "nonsense"], "train.device: invalid value 'nonsense'; allowed: auto, cpu, cuda, cuda:N, mps"),
        (["--train.steps", "-1"], "train.steps: invalid value -1; allowed: an integer >= 0"),
        (["--preset", "gcgan", "--data.preprocess", "scale_width", "--train.batch_size", "1", "--method.pool_size", "0"],
         "method.geometry 'rot' rotates by 90 degrees and needs square images"),
        (["--preset", "cyclegan", "--data.preprocess", "none"], "method.pool_size 50 needs images of one size"),
    ],
)
def test_config_errors_name_key_value_and_fix(args: list[str], message: str, capsys: pytest.CaptureFixture,
                                              tmp_path: Path) -> None:
    assert main(["train", "--train.runs_dir", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err
