"""Round seventeen (A): precision, devices and speed options, and checkpoints across them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srunit.app import TranslationDemo
from srunit.cli.main import main
from srunit.errors import ConfigError
from srunit.export import export_generator
from srunit.inference import Translator


# ONNX loads in a fraction of a second; a torch.export program takes seconds to export and to load each time (the
# full suite runs both).
@pytest.fixture(scope="module", params=[".onnx", pytest.param(".pt2", marks=pytest.mark.slow)])
def fp16_export(tiny_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory,
                request: pytest.FixtureRequest) -> Path:
    """The tiny CUT run exported in fp16 as an ONNX file or a torch.export program (read-only for tests)."""
    path = tmp_path_factory.mktemp("fp16_export") / f"g16{request.param}"
    export_generator(tiny_runs["cut"], path, precision="fp16", check_sizes=((1, 32, 32),))
    return path


def test_an_exported_file_asked_for_another_precision_is_refused_and_its_own_is_reported(
        fp16_export: Path, tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # --precision fp32 on an fp16 file translated in fp16 without a word (the CLI default was fp32, so an
    # explicit fp32 could not be told from none), and the app's page said "computed ... in fp32".
    inp = tmp_path / "in"
    inp.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(inp / "a.png")
    assert main(["translate", "--checkpoint", str(fp16_export), "--input", str(inp), "--output",
                 str(tmp_path / "x"), "--precision", "fp32"]) == 2
    err = capsys.readouterr().err
    assert "--precision fp32" in err and "fixed at export (fp16" in err and "leave --precision out" in err
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match="fixed at export"):
        Translator.from_checkpoint(fp16_export, device="cpu", precision="fp32")
    # Its own precision, or none, translates; what was computed is named.
    assert main(["translate", "--checkpoint", str(fp16_export), "--input", str(inp), "--output",
                 str(tmp_path / "y"), "--precision", "fp16"]) == 0
    assert main(["translate", "--checkpoint", str(fp16_export), "--input", str(inp), "--output",
                 str(tmp_path / "z")]) == 0
    assert Translator.from_checkpoint(fp16_export, device="cpu").precision == "fp16"
    # A run folder still computes in fp32 unless told, and in the precision it is told.
    assert Translator.from_checkpoint(tiny_runs["cut"], device="cpu").precision == "fp32"
    translator = Translator.from_checkpoint(tiny_runs["cut"], device="cpu", precision="bf16")
    assert (translator.precision, translator.dtype) == ("bf16", torch.bfloat16)
    demo = TranslationDemo.from_checkpoints([tiny_runs["cut"], fp16_export], device="cpu")
    assert [m.translator.precision for m in demo.models] == ["fp32", "fp16"]


def test_bench_speed_records_every_setting_that_changes_its_speed(
        tiny_model_overrides: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # speed.md names four settings that change speed, not results; the table and the JSON named two
    # (precision, compile), so a run with channels-last or activation checkpointing read as one without.
    out = tmp_path / "speed.json"
    assert main(["bench", "speed", "--preset", "cut", "--size", "32", "--steps", "1", "--warmup", "0",
                 "--device", "cpu", "--json", str(out), *(f"--{o}" for o in tiny_model_overrides),
                 "--method.num_patches", "16", "--train.channels_last", "true",
                 "--train.activation_checkpointing", "true"]) == 0
    header, _, row = capsys.readouterr().out.splitlines()[:3]
    cells = dict(zip(header.strip("|").split(" | "), row.strip("|").split(" | ")))
    assert (cells["channels-last"].strip(), cells["checkpointing"].strip(), cells["compile"].strip()) == (
        "yes", "yes", "no")
    result = json.loads(out.read_text())
    assert (result["channels_last"], result["activation_checkpointing"], result["compile"]) == (True, True, False)
    # What the table prints follows from what was measured.
    assert float(cells["img/s"]) == pytest.approx(result["images_per_s"], abs=0.006)
    assert result["images_per_s"] == pytest.approx(result["steps"] * result["batch_size"] / (
        result["seconds_per_step"] * result["steps"]))


@pytest.mark.parametrize("preset", ["cyclegan", "stegogan"])
def test_activation_checkpointing_reaches_both_generators_of_a_two_sided_method(tiny_config, random_batch,
                                                                                 preset: str) -> None:
    # Only G was checkpointed: the B -> A generator kept every activation, with the option on and no word.
    from srunit.engine.runner import StepRunner
    from srunit.engine.schedule import Schedule
    from srunit.networks import generator as generator_module

    runner = StepRunner(tiny_config(preset, "train.activation_checkpointing=true"), torch.device("cpu"),
                        Schedule.constant(1))
    nets = runner.method.networks()
    assert nets["G"].activation_checkpointing and nets["G_BA"].activation_checkpointing
    segments: list[int] = []
    original = generator_module.checkpoint

    def counted(function, *args, **kwargs):  # noqa: ANN001, ANN202 - torch's checkpoint, counted per generator
        segments.append(id(function.__self__))
        return original(function, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(generator_module, "checkpoint", counted)
        runner.train_step(random_batch(1, 32))
    assert {id(nets["G"]), id(nets["G_BA"])} <= set(segments)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_benchmark_on_a_device_this_machine_lacks_writes_nothing_so_the_advised_command_runs(
        tmp_path: Path) -> None:
    # OUT/settings.json was written before the device was checked: `--device cpu` with the same --out (or demo
    # --name), as the error advised, was then refused as "a benchmark with other settings".
    from srunit.synthscapes.benchmark import run_benchmark
    from srunit.synthscapes.settings import profile_settings

    out = tmp_path / "bench"
    for device in ("cuda", "cuda:1"):
        with pytest.raises(ConfigError, match=f"--device is '{device}' but CUDA is not available here"):
            run_benchmark(out, profile_settings("cpu", methods=["cut"], conditions=("unmatched",), seeds=1, steps=1,
                                                size=32, device=device))
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_tune_on_a_device_this_machine_lacks_is_refused_before_the_data_is_made(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # It rendered the SynthScapes data and wrote tune.json (naming cuda) and study.db, then refused the device.
    out = tmp_path / "tune"
    assert main(["tune", "synthscapes", "--preset", "cut", "--device", "cuda", "--out", str(out), "--trials", "1",
                 "--steps", "1", "--no-progress"]) == 2
    assert "--device is 'cuda' but CUDA is not available here" in capsys.readouterr().err
    assert not out.exists()
