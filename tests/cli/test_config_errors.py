"""`srunit train` configuration: the resolved config of --dry-run, and errors that name key, value and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from srunit.cli.main import main
from srunit.config import preset_names


def test_dry_run_prints_resolved_config_and_checks_it_on_one_batch(capsys: pytest.CaptureFixture, tiny_data: Path,
                                                                    tiny_model_overrides: list[str],
                                                                    tmp_path: Path) -> None:
    assert main(["train", "--preset", "fastcut", "--train.batch_size", "4", "--method.robustness.weight=1"]) == 2
    assert "unknown key method.robustness" in capsys.readouterr().err
    tiny = ["--data.root", str(tiny_data), "--data.load_size", "36", "--data.crop_size", "32", "--train.device", "cpu",
            "--train.runs_dir", str(tmp_path / "runs"), *[f"--{o}" for o in tiny_model_overrides]]
    assert main(["train", "--preset", "srunit-official", "--train.batch_size", "4", "--dry-run", *tiny]) == 0
    out = capsys.readouterr().out
    config_text, _, checked = out.partition("data: ")
    cfg = yaml.safe_load(config_text)
    assert cfg["train"]["batch_size"] == 4
    assert cfg["method"]["robust"] == {**cfg["method"]["robust"], "weight": 1e-3, "max_noise": 1e-3,
                                       "sample_one_layer": True, "noise": "official", "warmup": "freeze"}
    assert "domain-A and" in checked and "networks (parameters): G " in checked and "NCE " in checked
    assert not (tmp_path / "runs").exists()  # nothing written
    # Errors that training would meet at step 0 come from the dry run: folders and network shapes.
    assert main(["train", "--dry-run", *tiny, "--data.dir_a", str(tmp_path / "nowhere")]) == 2
    assert f"folder {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err


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
        (
            ["--data.preprocess", "none", "--train.batch_size", "2"],
            "data.preprocess 'none' keeps each image's own size, so images cannot be batched (train.batch_size 2)",
        ),
        (
            ["--train.device", "nonsense"],
            "train.device: invalid value 'nonsense'; allowed: auto, cpu, cuda, cuda:N, mps",
        ),
        (["--train.steps", "-1"], "train.steps: invalid value -1; allowed: an integer from 0 to 1,000,000,000,000"),
        (
            ["--data.crop_size", "30"],
            "data.crop_size 30 does not fit the networks: it must be a multiple of 4 (the "
            "generator down-samples twice) and at least 24 (3 x 2^model.n_layers_d, the discriminator's depth 3); use "
            "e.g. data.crop_size 32",
        ),
        (["--data.crop_size", "16", "--data.load_size", "16"], "at least 24 (3 x 2^model.n_layers_d"),
        (["--data.crop_size", "16", "--model.n_layers_d", "2", "--data.preprocess", "crop"], None),
        (["--train.seed", str(2**64)], f"train.seed: invalid value {2**64}; allowed: an integer in [0, 2**64 - 1]"),
        (
            [
                "--preset",
                "gcgan",
                "--data.preprocess",
                "scale_width",
                "--train.batch_size",
                "1",
                "--method.pool_size",
                "0",
            ],
            "method.geometry 'rot' rotates by 90 degrees and needs square images",
        ),
        (["--preset", "cyclegan", "--data.preprocess", "none"], "method.pool_size 50 needs images of one size"),
    ],
)
def test_config_errors_name_key_value_and_fix(
    args: list[str], message: str | None, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    if message is None:  # valid: fails only for the missing data
        assert main(["train", "--train.runs_dir", str(tmp_path), *args]) == 2
        assert "no training data given" in capsys.readouterr().err
        return
    assert main(["train", "--train.runs_dir", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err
