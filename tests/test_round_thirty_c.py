"""Round thirty (C): a generator's own size multiple, and a plugin's model options.

- An export of a plugin generator whose `size_multiple` is not 4 wrote "H and W multiples of 4" into the file's
  ``input`` metadata and printed it, while its own ``size_multiple`` key said otherwise; ``--check-size`` refused
  sides the generator takes (18x34 for a multiple of 2) as "must be multiples of 4".
- The toy plugin of docs/adding-a-method.md took ``--model.ngf`` and the other model options its networks never
  read, without a word: the page never showed `MethodOptions.void_model_options`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from srunit.cli.main import main

PLUGINS = Path(__file__).resolve().parent / "plugins"
DOCS = Path(__file__).resolve().parents[1] / "docs"


class _Strided(nn.Module):
    """A plugin-style translator: ``levels`` stride-2 convolutions down and as many transposed ones up, so its sides
    must be multiples of 2 ** levels (its `size_multiple`, set per instance below)."""

    multimodal = False

    def __init__(self, levels: int = 1) -> None:
        super().__init__()
        self.config: dict[str, Any] = {"levels": levels}
        self.down = nn.Sequential(*[nn.Conv2d(3, 3, 4, stride=2, padding=1) for _ in range(levels)])
        self.up = nn.Sequential(*[nn.ConvTranspose2d(3, 3, 4, stride=2, padding=1) for _ in range(levels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.up(self.down(x)))


class Strided2(_Strided):
    size_multiple = 2


class Strided8(_Strided):
    size_multiple = 8


@pytest.fixture
def strided_networks() -> Iterator[None]:
    """Strided2 and Strided8 registered as a plugin would register them; afterwards the registry is as it was."""
    from srunit.registry import NETWORKS

    NETWORKS.names()
    saved = dict(NETWORKS._entries)
    NETWORKS.register(Strided2)
    NETWORKS.register(Strided8)
    yield
    NETWORKS._entries.clear()
    NETWORKS._entries.update(saved)


def _generator_file(tmp_path: Path, cls: type[_Strided], levels: int) -> Path:
    from srunit.runtime.network_files import save_network

    path = tmp_path / cls.__name__ / "G.safetensors"
    path.parent.mkdir()
    save_network(cls(levels).eval(), path, cls.__name__)
    return path


def test_an_export_states_the_generators_own_size_multiple(strided_networks: None, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from srunit.exported import load_exported

    weights = _generator_file(tmp_path, Strided8, 3)  # three stride-2 stages: sides multiples of 2 ** 3 = 8
    out = tmp_path / "d8.ts"
    assert main(["export", str(weights), "--output", str(out), "--check-size", "16x24"]) == 0
    printed = capsys.readouterr().out
    assert "H and W multiples of 8" in printed and "multiples of 4" not in printed
    meta = load_exported(out)[0].metadata
    assert meta["size_multiple"] == "8"
    assert meta["input"].endswith("H and W multiples of 8")


def test_check_size_takes_what_the_generator_takes_and_refuses_what_it_does_not(
        strided_networks: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = _generator_file(tmp_path, Strided2, 1)  # one stride-2 stage: even sides
    assert main(["export", str(weights), "--output", str(tmp_path / "dup.ts"), "--check-size", "18x34"]) == 0
    assert "H and W multiples of 2" in capsys.readouterr().out
    weights8 = _generator_file(tmp_path, Strided8, 3)
    assert main(["export", str(weights8), "--output", str(tmp_path / "d8.ts"), "--check-size", "20x20"]) == 2
    assert "--check-size 20x20: this generator takes sides that are multiples of 8" in capsys.readouterr().err
    assert not (tmp_path / "d8.ts").exists()
    assert main(["export", str(weights8), "--output", str(tmp_path / "d8.ts"), "--check-size", "8x8"]) == 2
    assert "at least 16" in capsys.readouterr().err


class Strided64(_Strided):
    size_multiple = 64


def test_an_export_without_check_size_checks_default_sizes_the_generator_takes(
        strided_networks: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from srunit.registry import NETWORKS

    NETWORKS.register(Strided64)  # the fixture restores the registry
    weights = _generator_file(tmp_path, Strided64, 6)  # sides multiples of 2 ** 6; it was refused "--check-size 96x160"
    assert main(["export", str(weights), "--output", str(tmp_path / "g64.ts")]) == 0
    out = capsys.readouterr().out
    # 128x128 and 96x160 rounded up to multiples of 64: 128x128 (batch 2) and 128x192
    assert "2x3x128x128 max abs diff" in out and "1x3x128x192 max abs diff" in out


def test_help_and_docs_state_no_fixed_multiple_for_every_generator(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("translate", "export"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "multiple of 4" not in text and "multiples of 4;" not in text, command
        assert "size multiple" in text, command
    for page in ("after-training.md", "translating.md"):
        text = " ".join((DOCS / page).read_text().split())
        assert "H and W multiples of 4 |" not in text and "padded to a multiple of 4," not in text, page


# ------------------------------------------------------------------ a plugin's model options


@pytest.fixture
def toy_plugin(load_test_plugins: Callable[..., None]) -> None:
    """tests/plugins/toy_translation.py imported as srunit imports a plugin (see `load_test_plugins`)."""
    load_test_plugins("toy_translation")


# A value other than the default for every model option.
OTHER_MODEL_VALUES: dict[str, Any] = {
    "ngf": 16, "ndf": 8, "n_blocks": 3, "n_layers_d": 2, "antialias": False, "antialias_up": False,
    "feature_layers": (0, 4), "projector_dim": 8, "projector_norm": "shifted", "init_gain": 0.5, "init_type": "normal"}


def _toy_weights(model_changes: dict[str, Any]) -> dict[str, torch.Tensor]:
    from srunit.options import ModelConfig
    from srunit.registry import METHODS

    method = METHODS.get("toy")
    torch.manual_seed(0)
    net = method(method.Options(), ModelConfig(**model_changes))
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def test_the_toy_plugin_declares_exactly_the_model_options_its_networks_never_read(toy_plugin: None) -> None:
    from srunit.options import ModelConfig
    from srunit.registry import METHODS

    assert set(OTHER_MODEL_VALUES) == set(ModelConfig.__dataclass_fields__)
    default = _toy_weights({})
    # Read: the toy's networks come out different when it changes. Never read: the same shapes and weights.
    unread = set()
    for key, value in OTHER_MODEL_VALUES.items():
        changed = _toy_weights({key: value})
        same = changed.keys() == default.keys() and all(
            changed[k].shape == default[k].shape and torch.equal(changed[k], default[k]) for k in default)
        if same:
            unread.add(key)
    assert unread == {"ngf", "n_blocks", "antialias_up", "feature_layers", "projector_dim", "projector_norm"}
    assert set(METHODS.get("toy").Options().void_model_options()) == unread


def test_a_toy_run_refuses_a_model_option_its_networks_never_read(toy_plugin: None, tiny_data: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    preset = tmp_path / "toy.yaml"
    preset.write_text("method:\n  name: toy\n  width: 6\ntrain:\n  name: toy\n")
    runs = tmp_path / "runs"
    base = ["train", "--preset", str(preset), "--data.root", str(tiny_data), "--data.load_size", "32",
            "--data.crop_size", "32", "--data.num_workers", "0", "--train.device", "cpu", "--train.steps", "1",
            "--train.runs_dir", str(runs), "--no-progress"]
    for key, value in (("ngf", "16"), ("n_blocks", "3"), ("antialias_up", "false")):
        assert main([*base, f"--model.{key}", value]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.endswith("or leave it out"), err
        assert f"model.{key} " in err and "has no effect: the toy method's networks read method.width" in err, err
        assert not runs.exists()


def test_adding_a_method_shows_the_void_model_options_hook() -> None:
    text = " ".join((DOCS / "adding-a-method.md").read_text().split())
    assert "`void_model_options`" in text and "has no effect" in text
    assert "The base's `void_options` names every other key of a term that never acts" in text  # a term's hook
    assert "def void_model_options" in (PLUGINS / "toy_translation.py").read_text()  # the file the page includes
