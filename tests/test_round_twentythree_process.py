"""Round twenty-three (B): the process a user runs srunit in (global torch state a caller set before the API)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from srunit.config import Config
from srunit.errors import ConfigError


@pytest.fixture
def torch_defaults() -> Iterator[None]:
    """Whatever a test sets of torch's process-wide defaults is put back after it."""
    dtype, device = torch.get_default_dtype(), torch.get_default_device()
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)
        torch.set_default_device(device)


DEFAULTS = {
    "float64": (lambda: torch.set_default_dtype(torch.float64),
                "torch's default dtype is torch.float64 (torch.set_default_dtype)"),
    "float16": (lambda: torch.set_default_dtype(torch.float16),
                "torch's default dtype is torch.float16 (torch.set_default_dtype)"),
    "meta": (lambda: torch.set_default_device("meta"),
             "torch's default device is meta (torch.set_default_device)"),
}


@pytest.mark.parametrize("default", sorted(DEFAULTS))
def test_torch_defaults_srunit_cannot_compute_under_are_refused_by_name(
        default: str, torch_defaults: None, tiny_config: Callable[..., Config], tiny_data: Path,
        tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """`torch.set_default_dtype(torch.float64)` (or float16, or `torch.set_default_device("meta")`) before the API:
    `Trainer(...).fit()` and `Translator.from_checkpoint(...).translate_folder(...)` ended in torch's `RuntimeError:
    Input type (float) and bias type (double) should be the same` (meta: `NotImplementedError: Cannot copy out of meta
    tensor`), and `export_generator` wrote a file of float64 weights that said fp32. Each is now refused naming the
    default, the call that set it and the call that puts it back."""
    from srunit import Trainer, Translator, export_generator

    config = tiny_config("cut", "train.steps=1", data_root=tiny_data, runs_dir=tmp_path / "runs")
    set_default, named = DEFAULTS[default]
    set_default()
    calls: list[Callable[[], object]] = [
        lambda: Trainer(config, show_progress=False),
        lambda: Translator.from_checkpoint(tiny_runs["cut"], device="cpu"),
        lambda: export_generator(tiny_runs["cut"], tmp_path / "g.pt2", check_sizes=[(1, 32, 32)]),
    ]
    for call in calls:
        with pytest.raises(ConfigError) as err:
            call()
        text = str(err.value)
        assert "\n" not in text and named in text, text
        assert ("torch.set_default_dtype(torch.float32)" if "dtype" in named else "torch.set_default_device('cpu')"
                ) in text, text
    assert not (tmp_path / "runs").exists() and not (tmp_path / "g.pt2").exists()
    # the advice as printed puts srunit back to work
    torch.set_default_dtype(torch.float32)
    torch.set_default_device("cpu")
    assert Translator.from_checkpoint(tiny_runs["cut"], device="cpu").translate_tensor(
        torch.zeros(1, 3, 32, 32)).dtype == torch.float32


def _weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file
    return load_file(str(run / "checkpoints" / "latest" / "G.safetensors"))


@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_a_trainer_trains_under_a_callers_no_grad_or_inference_mode(
        mode: str, tiny_config: Callable[..., Config], tiny_data: Path, tmp_path: Path) -> None:
    """`torch.set_grad_enabled(False)` or `with torch.inference_mode():` around `Trainer(config).fit()` (a caller that
    just translated something): training stopped at step 0 with `method 'cut' ...: phase 'D' returned as its loss a
    tensor ... that does not require grad ...: fix the plugin`, blaming a built-in method. Training owns its grad mode
    now: the run is the one trained in a plain process, weight for weight."""
    from srunit import Trainer

    def train(name: str) -> Path:
        config = tiny_config("cut", "train.steps=1", f"train.name={name}", data_root=tiny_data,
                             runs_dir=tmp_path / "runs")
        return Trainer(config, show_progress=False).fit()

    plain = _weights(train("plain"))
    if mode == "no_grad":
        with torch.no_grad():
            run = train("caller")
    else:
        with torch.inference_mode():
            run = train("caller")
    assert torch.is_grad_enabled()
    caller = _weights(run)
    assert caller.keys() == plain.keys()
    for key, value in plain.items():
        assert torch.equal(caller[key], value), key
