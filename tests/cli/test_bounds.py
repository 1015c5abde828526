"""No traceback and no silent garbage, end to end: sizes and seeds out of range, duplicate YAML keys, tiny images
and a generator that outputs NaN, through the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from srunit.cli.main import main
from srunit.engine.checkpoint import save_checkpoint
from srunit.methods import build_method
from srunit.networks import ResnetGenerator
from srunit.runtime.network_files import save_network


def test_a_duplicate_key_in_a_config_file_is_refused_naming_key_and_file(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "mine.yaml"
    config.write_text("base: cut\ntrain:\n  lr: 0.001\n  batch_size: 1\n  lr: 0.1\n")
    assert main(["train", "--preset", str(config), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"srunit train: error: {config}: line 5: the key 'lr' appears twice in one mapping" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("args", "says"), [
    (["--data.crop_size", "3377699720527872", "--data.load_size", "3377699720527872"],
     "data.crop_size 3377699720527872 is more than data.max_pixels allows"),
    (["--data.crop_size", "9" * 10_000], "data.crop_size: invalid value '99999"),
    (["--model.init_gain", "-0.02"], "model.init_gain: invalid value -0.02; allowed: a number > 0"),
])
def test_sizes_that_cannot_be_right_are_refused_before_anything_is_built(args: list[str], says: str,
                                                                         capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--preset", "cut", "--dry-run", *args]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err) < 600


def test_seeds_of_2_pow_64_and_above_are_refused(tiny_config, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tiny_config("drit")
    method = build_method(config.method, config.model)
    folder = save_checkpoint(tmp_path / "run" / "checkpoints", 1, method.networks(), {"step": 1}, keep=True)
    inp = tmp_path / "in"
    inp.mkdir()
    Image.new("RGB", (8, 8)).save(inp / "a.png")
    assert main(["translate", "--checkpoint", str(folder), "--input", str(inp), "--output", str(tmp_path / "out"),
                 "--device", "cpu", "--attribute-seed", str(2**64)]) == 2
    err = capsys.readouterr().err
    assert "srunit translate: error: --attribute-seed must be an integer from 0 to 2**64 - 1" in err
    assert not (tmp_path / "out").exists()


def test_tiny_images_translate_and_a_nan_generator_writes_nothing(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    g = ResnetGenerator(ngf=4, n_blocks=1)
    save_network(g, tmp_path / "ok" / "G.safetensors", "ResnetGenerator")
    inp = tmp_path / "in"
    inp.mkdir()
    for name, size in (("a.png", (2, 2)), ("b.png", (1, 5))):
        Image.new("RGB", size, (200, 10, 10)).save(inp / name)
    assert main(["translate", "--checkpoint", str(tmp_path / "ok" / "G.safetensors"), "--input", str(inp),
                 "--output", str(tmp_path / "out"), "--device", "cpu"]) == 0
    assert {p.name: Image.open(p).size for p in (tmp_path / "out").glob("*.png")} == {"a.png": (2, 2),
                                                                                     "b.png": (1, 5)}
    with torch.no_grad():
        g.layers[1].weight.fill_(float("nan"))
    save_network(g, tmp_path / "nan" / "G.safetensors", "ResnetGenerator")
    capsys.readouterr()
    assert main(["translate", "--checkpoint", str(tmp_path / "nan" / "G.safetensors"), "--input", str(inp),
                 "--output", str(tmp_path / "out2"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "srunit translate: error: the generator's output holds NaN or inf values" in err
    assert not list((tmp_path / "out2").glob("*.png")) if (tmp_path / "out2").exists() else True


@pytest.mark.parametrize(("args", "says"), [
    (["translate", "--checkpoint", "x", "--input", "x", "--output", "y", "--max-pixels", str(10**20)],
     "--max-pixels must be an integer from 1 to 4,294,967,296"),
    (["app", "--checkpoint", "x", "--max-pixels", str(10**20)], "--max-pixels must be an integer from 1 to"),
    (["train", "--preset", "cyclegan", "--dry-run", "--method.pool_size", str(10**12)],
     "method.pool_size: invalid value 1000000000000; allowed: an integer from 0 to 10,000"),
    (["train", "--preset", "cut", "--dry-run", "--train.device", "mps:3"], "train.device: invalid value 'mps:3'"),
])
def test_counts_with_a_resource_meaning_have_an_upper_bound(args: list[str], says: str,
                                                            capsys: pytest.CaptureFixture) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
