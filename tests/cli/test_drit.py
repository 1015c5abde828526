"""`srunit train --preset drit` and `srunit translate` of its run with --attribute-seed and --reference,
end to end; the attribute options on a unimodal checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srunit.cli.main import main
from srunit.networks import ResnetGenerator
from srunit.runtime.network_files import save_network


def _pixels(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


def test_train_drit_and_translate_with_seeds_and_a_reference(tiny_data: Path, tmp_path: Path,
                                                             tiny_model_of: Callable[[str], list[str]],
                                                             capsys: pytest.CaptureFixture) -> None:
    runs = tmp_path / "runs"
    small = [*tiny_model_of("drit"),
             "--method.dis_layers", "3", "--method.content_dis_layers", "0", "--data.load_size", "36",
             "--data.crop_size", "32", "--data.num_workers", "0", "--train.device", "cpu", "--no-progress"]
    assert main(["train", "--preset", "drit", "--data.root", str(tiny_data), "--train.runs_dir", str(runs),
                 "--train.name", "d", "--train.steps", "1", *small]) == 0
    run = runs / "d"
    names = {p.name for p in (run / "checkpoints" / "latest").iterdir()}
    assert {f"{n}.safetensors" for n in ("E_c", "E_a", "G", "D_A", "D_A2", "D_B", "D_B2", "D_content")} <= names
    assert "D_content" in (run / "metrics.jsonl").read_text() and "latent_A" in (run / "metrics.jsonl").read_text()

    inp = tmp_path / "in"
    inp.mkdir()
    Image.open(tiny_data / "testA" / "0000.png").save(inp / "a.png")
    Image.new("RGB", (45, 37), (30, 60, 90)).save(inp / "b.png")
    outs = {}
    for label, extra in (("seed1", ["--attribute-seed", "1"]), ("seed1_again", ["--attribute-seed", "1"]),
                         ("seed2", ["--attribute-seed", "2"]), ("default", []), ("seed0", ["--attribute-seed", "0"]),
                         ("reference", ["--reference", str(tiny_data / "testB" / "0000.png")])):
        out = tmp_path / label
        assert main(["translate", "--checkpoint", str(run), "--input", str(inp), "--output", str(out),
                     "--device", "cpu", *extra]) == 0
        outs[label] = _pixels(out)
    assert {k: v.shape for k, v in outs["seed1"].items()} == {"a.png": (40, 40, 3), "b.png": (37, 45, 3)}
    for name in ("a.png", "b.png"):
        assert np.array_equal(outs["seed1"][name], outs["seed1_again"][name])
        assert np.array_equal(outs["default"][name], outs["seed0"][name])
        assert not np.array_equal(outs["seed1"][name], outs["seed2"][name])
        assert not np.array_equal(outs["reference"][name], outs["seed0"][name])
    capsys.readouterr()
    assert main(["translate", "--checkpoint", str(run), "--input", str(inp), "--output", str(tmp_path / "x"),
                 "--attribute-seed", "1", "--reference", str(inp / "a.png")]) == 2
    assert "--attribute-seed 1 and --reference" in capsys.readouterr().err
    assert main(["translate", "--checkpoint", str(run), "--input", str(inp), "--output", str(tmp_path / "x"),
                 "--reference", str(tmp_path / "missing.png")]) == 2
    assert "missing.png" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_attribute_options_on_a_unimodal_checkpoint_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    torch.manual_seed(0)
    save_network(ResnetGenerator(ngf=4, n_blocks=6), tmp_path / "G.safetensors", "ResnetGenerator")
    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    for option, value in (("--attribute-seed", "3"), ("--reference", str(tmp_path / "a.png"))):
        assert main(["translate", "--checkpoint", str(tmp_path / "G.safetensors"), "--input", str(tmp_path / "a.png"),
                     "--output", str(tmp_path / "out"), "--device", "cpu", option, value]) == 2
        err = capsys.readouterr().err
        assert (
            f"srunit translate: error: {option}: this checkpoint's generator (ResnetGenerator) gives one output" in err
        )
    assert not (tmp_path / "out").exists()
    assert (
        main(
            [
                "translate",
                "--checkpoint",
                str(tmp_path / "G.safetensors"),
                "--input",
                str(tmp_path / "a.png"),
                "--output",
                str(tmp_path / "out"),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
