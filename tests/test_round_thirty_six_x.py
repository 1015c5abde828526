"""Round thirty-six (X): a run folder moved or deleted between `Trainer.resume` and `fit`, and the least side of an
exported generator.

- `Trainer.resume(run)`, then the folder moved or deleted, then `fit()`: fit made a new folder at the old path
  (config.yaml, a history line "resume", an empty metrics.jsonl), trained every step, then stopped saying it wrote
  nothing there; the folder it made refused the advice to extend the run and took the name of a new run (probe
  36E, D8).
- An exported generator's `input` line said "H and W multiples of 4", and a 4x4 or 4x8 image failed in every format
  (the bottleneck of a quarter side is reflection-padded by 1): the least side is found at export, stated in the
  metadata (`min_size`) and the printout, and `srunit translate` pads up to it (probe 36E, D9).
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from srunit.config import Config
from srunit.engine import Trainer
from srunit.errors import ConfigError

# ------------------------------------------------------------------ D8: the run folder gone before fit


def _copy(run: Path, to: Path) -> Path:
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run, to, symlinks=True)
    return to


def _count_steps(trainer: Trainer, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The steps ``trainer`` trains from now on (a list that grows with each)."""
    steps: list[int] = []
    step = trainer.runner.train_step

    def counted(batch: dict) -> Any:
        steps.append(trainer.step)
        return step(batch)

    monkeypatch.setattr(trainer.runner, "train_step", counted)
    return steps


def test_a_run_moved_after_resume_gets_nothing_at_its_old_path_and_fit_says_where_it_is(
        tiny_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`r = Trainer.resume('runs/mv1', ['train.steps=8']); mv runs/mv1 runs/mv1_moved; r.fit()`: fit trained every step,
    made runs/mv1 again (config.yaml, history.jsonl, metrics.jsonl), then said "training stopped after step 8 without
    writing into runs/mv1". Now it trains nothing, makes nothing there, names the new place, and its advice works."""
    run = _copy(tiny_runs["cut"], tmp_path / "runs" / "mv1")
    moved = tmp_path / "runs" / "mv1_moved"
    history = (run / "history.jsonl").read_text()
    trainer = Trainer.resume(run, ["train.steps=3"], show_progress=False)
    steps = _count_steps(trainer, monkeypatch)
    run.rename(moved)
    with pytest.raises(ConfigError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert f"the run folder {run} was moved, deleted or replaced since this Trainer opened it" in message, message
    assert f"it is now at {moved.resolve()}" in message and "trained nothing and wrote nothing" in message, message
    assert "\n" not in message
    assert steps == [] and not run.exists() and not run.is_symlink()
    assert (moved / "history.jsonl").read_text() == history  # the run itself is as it was
    again = Trainer.resume(str(moved.resolve()), ["train.steps=3"], show_progress=False)  # the advice
    assert again.fit() == moved.resolve() and again.step == 3


@pytest.mark.parametrize("overrides", [["train.steps=3"], []], ids=["extended", "ended"])
def test_a_run_deleted_after_resume_leaves_no_folder_at_its_path(
        tiny_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overrides: list[str]) -> None:
    """`r = Trainer.resume('runs/del1'); shutil.rmtree('runs/del1'); r.fit()`: fit made runs/del1 again with a history
    saying "resume" and no checkpoint, so `srunit train --resume runs/del1 --train.steps N`, its own advice for the
    ended run, was refused ("its checkpoints were deleted"), and the name was taken. Now nothing is made there, and
    the message says the folder was deleted."""
    run = _copy(tiny_runs["cut"], tmp_path / "runs" / "del1")
    trainer = Trainer.resume(run, overrides, show_progress=False)
    steps = _count_steps(trainer, monkeypatch)
    shutil.rmtree(run)
    with pytest.raises(ConfigError) as caught:
        trainer.fit()
    message = str(caught.value)
    assert "there is no folder there now; the folder it opened was deleted" in message, message
    assert "a deleted run cannot be continued" in message, message
    assert steps == [] and not run.exists()


def test_a_new_run_deleted_before_fit_is_not_made_again_and_the_advice_starts_it(
        tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path) -> None:
    """`Trainer(config)` then its folder deleted, then `fit()`: the folder was made again by the first write. Now fit
    stops before it, and the advice (a new Trainer of the same config) trains the run."""
    config = tiny_config("cut", "train.steps=1", "train.name=new1", "train.loggers=[]", data_root=tiny_data,
                         runs_dir=tmp_path / "runs")
    run = tmp_path / "runs" / "new1"
    trainer = Trainer(config, show_progress=False)
    shutil.rmtree(run)
    with pytest.raises(ConfigError, match=r"start the run again with a new Trainer\(config\)"):
        trainer.fit()
    assert not run.exists()
    assert Trainer(config, show_progress=False).fit() == run and (run / "checkpoints" / "latest").is_symlink()


@pytest.mark.parametrize("call", ["fit", "save"])
def test_a_released_run_moved_before_a_later_fit_or_save_gets_no_lock_at_its_old_path(
        tiny_runs: dict[str, Path], tmp_path: Path, call: str) -> None:
    """A Trainer that released its run (`release()`, or after its fit), the folder then moved: a later `fit()` or
    `save()` locked the old path (a new folder holding train.lock) and then blamed "another Trainer or process".
    Now it says the folder was moved and makes nothing there."""
    run = _copy(tiny_runs["cut"], tmp_path / "runs" / "rel")
    trainer = Trainer.resume(run, ["train.steps=3"], show_progress=False)
    trainer.release()
    run.rename(tmp_path / "runs" / "rel_moved")
    with pytest.raises(ConfigError) as caught:
        trainer.fit() if call == "fit" else trainer.save(keep=False)
    message = str(caught.value)
    assert f"the run folder {run} was moved, deleted or replaced since this Trainer opened it" in message, message
    assert f"Trainer.{call} trained nothing and wrote nothing at {run}" in message, message
    assert "this Trainer had released it" in message, message
    assert not run.exists()


# ------------------------------------------------------------------ D9: the least side of an exported generator


def _runner(path: Path) -> Callable[[int, int], bool]:
    """``(height, width) -> whether the exported file at path translates a (1, 3, height, width) image to its size``,
    run as its users run it: through onnxruntime, torch.export.load or torch.jit.load, without srunit."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

        def run(image: torch.Tensor) -> tuple[int, ...]:
            return tuple(session.run(None, {"image": image.numpy()})[0].shape)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load
            module = torch.export.load(str(path)).module() if path.suffix == ".pt2" else torch.jit.load(str(path))

        def run(image: torch.Tensor) -> tuple[int, ...]:
            with torch.no_grad():
                return tuple(module(image).shape)

    def takes(height: int, width: int) -> bool:
        image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0)) * 2 - 1
        try:
            return run(image) == (1, 3, height, width)
        except Exception:  # noqa: BLE001 - each runtime fails its own way (a guard, a padding error, an ORT status)
            return False

    return takes


# torch.export takes seconds per generator on a loaded 2-core machine: .pt2 in the full suite
@pytest.mark.parametrize("suffix", [".onnx", pytest.param(".pt2", marks=pytest.mark.slow), ".ts"])
def test_an_export_states_the_least_side_and_every_format_takes_it_but_not_the_side_below(
        suffix: str, tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`srunit export runs/r1 --output ex.onnx` (.pt2, .ts): the `input` line said "H and W multiples of 4", and
    (1, 3, 4, 4) and (1, 3, 4, 8) failed in all three formats ("Pad reflect requires axis length >= 2"). The built-in
    generator's bottleneck (a quarter of the side) is reflection-padded by 1, so it needs sides of 2 * 4 = 8: the
    printout and the metadata say "at least 8", 8 works in each format, and 4, which the contract now excludes,
    fails."""
    from srunit.cli.main import main
    from srunit.exported import load_exported

    out = tmp_path / f"g{suffix}"
    assert main(["export", str(tiny_runs["cut"]), "--output", str(out), "--check-size", "16x24"]) == 0
    printed = capsys.readouterr().out
    assert "H and W multiples of 4, at least 8\n" in printed, printed
    meta = load_exported(out)[0].metadata
    assert meta["min_size"] == "8" and meta["input"].endswith("H and W multiples of 4, at least 8"), meta
    if suffix == ".onnx":
        import onnx

        assert "at least 8" in onnx.load(str(out)).doc_string
    takes = _runner(out)
    for h, w in [(8, 8), (8, 24), (24, 8)]:
        assert takes(h, w), (h, w)
    for h, w in [(4, 4), (4, 8), (8, 4)]:
        assert not takes(h, w), (h, w)


class _Padded(nn.Module):
    """A plugin-style translator of size multiple 1 whose first layer is a reflection padding of 3: it takes sides of
    4 and more (a reflection pads at most side - 1), not 2, twice its multiple, where `Translator` padded to."""

    multimodal = False
    size_multiple = 1

    def __init__(self) -> None:
        super().__init__()
        self.config: dict[str, Any] = {}
        self.layers = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, 3, 7))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.layers(x))


@pytest.fixture
def padded_network() -> Iterator[None]:
    """_Padded registered as a plugin would register it; afterwards the registry is as it was."""
    from srunit.registry import NETWORKS

    NETWORKS.names()
    saved = dict(NETWORKS._entries)
    NETWORKS.register(_Padded)
    yield
    NETWORKS._entries.clear()
    NETWORKS._entries.update(saved)


def test_the_least_side_is_the_generators_own_and_translate_pads_an_exported_file_up_to_it(
        padded_network: None, tmp_path: Path) -> None:
    """The least side is found from the generator, not fixed at twice its multiple: a generator of multiple 1 with a
    reflection padding of 3 takes sides of 4. Its exported file says so (min_size 4, "multiples of 1, at least 4"),
    and `Translator` pads a 1x1 or 3x2 image up to it, where it padded to 2 and failed on the file's padding."""
    from srunit.export import export_generator
    from srunit.inference import Translator
    from srunit.runtime.network_files import save_network

    weights = tmp_path / "P" / "G.safetensors"
    weights.parent.mkdir()
    save_network(_Padded().eval(), weights, "_Padded")
    out = tmp_path / "p.onnx"
    report = export_generator(weights, out, check_sizes=[(1, 16, 16)])
    assert report.metadata["min_size"] == "4"
    assert report.metadata["input"].endswith("H and W multiples of 1, at least 4")
    takes = _runner(out)
    assert takes(4, 4) and takes(4, 9) and not takes(3, 3) and not takes(3, 9)
    translator = Translator.from_checkpoint(out, device="cpu")
    for h, w in [(1, 1), (3, 2), (2, 5)]:
        x = torch.rand(1, 3, h, w) * 2 - 1
        assert tuple(translator.translate_tensor(x).shape) == (1, 3, h, w)


class _EveryStride(nn.Module):
    """Size multiple 8 (three stride-2 stages), no padding beyond: its least side is its multiple, and the `input`
    line says the multiple alone, as it did (round thirty (C))."""

    multimodal = False
    size_multiple = 8

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Sequential(*[nn.Conv2d(3, 3, 4, stride=2, padding=1) for _ in range(3)])
        self.up = nn.Sequential(*[nn.ConvTranspose2d(3, 3, 4, stride=2, padding=1) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.up(self.down(x)))


@pytest.mark.parametrize("name", ["cut", "cyclegan", "drit", "stegogan"])
def test_every_kind_of_generator_has_the_least_side_its_bottleneck_padding_needs(
        name: str, method_checkpoint, tmp_path: Path) -> None:
    """Every kind of built-in generator (the CUT family's, CycleGAN's and GcGAN's ResnetGenerator, DRIT's content
    encoder and decoder, StegoGAN's) pads its quarter-side bottleneck by reflection of 1: its least side is 8, twice
    its multiple of 4."""
    from srunit.export import least_side
    from srunit.inference import load_generator

    _, run = method_checkpoint(tmp_path, name, step=1)
    generator = load_generator(run).eval()
    assert least_side(generator, 128) == 8


def test_a_generator_whose_multiple_is_its_least_side_states_the_multiple_alone() -> None:
    """A generator that takes every multiple of its size multiple: its least side is the multiple (nothing more is
    stated, as round thirty (C)'s export of a multiple-8 plugin checks), and a largest side known to work bounds
    the search."""
    from srunit.export import least_side

    assert least_side(_EveryStride().eval(), 128) == 8
    assert least_side(_Padded().eval(), 16) == 4
    assert least_side(_Padded().eval(), 2) == 2  # nothing below the largest side given works: that side


def test_an_exported_file_without_min_size_is_padded_to_twice_its_multiple(
        tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """A file of an earlier export has no `min_size`: it reads as twice the multiple, what `Translator` padded to."""
    from srunit.export import export_generator
    from srunit.inference import Translator

    out = tmp_path / "g.ts"
    export_generator(tiny_runs["cut"], out, check_sizes=[(1, 16, 16)])
    extra = {"srunit.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(out), _extra_files=extra)
        metadata = json.loads(extra["srunit.json"])
        del metadata["min_size"]
        torch.jit.save(module, str(out), _extra_files={"srunit.json": json.dumps(metadata)})
    translator = Translator.from_checkpoint(out, device="cpu")
    assert getattr(translator.generator, "min_size", None) == 8
    assert np.asarray(translator.translate_tensor(torch.zeros(1, 3, 3, 3)).shape).tolist() == [1, 3, 3, 3]
