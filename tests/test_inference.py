"""Translation: native resolution, batching, precision, and checkpoints of the public code."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from srunit.engine.checkpoint import save_network
from srunit.errors import CheckpointError
from srunit.inference import Translator, load_generator
from srunit.networks import ResnetGenerator

# Key names and shapes of a default generator saved by the public CUT/SRUNIT code (ngf=64,
# 9 blocks, anti-aliased): its flat `model` Sequential, as listed from such a state dict.
PUBLIC_KEYS = (
    [("model.1.weight", (64, 3, 7, 7)), ("model.1.bias", (64,)), ("model.4.weight", (128, 64, 3, 3)),
     ("model.4.bias", (128,)), ("model.7.filt", (128, 1, 3, 3)), ("model.8.weight", (256, 128, 3, 3)),
     ("model.8.bias", (256,)), ("model.11.filt", (256, 1, 3, 3))]
    + [(f"model.{i}.conv_block.{j}.{p}", (256, 256, 3, 3) if p == "weight" else (256,))
       for i in range(12, 21) for j in (1, 5) for p in ("weight", "bias")]
    + [("model.21.filt", (256, 1, 4, 4)), ("model.22.weight", (128, 256, 3, 3)), ("model.22.bias", (128,)),
       ("model.25.filt", (128, 1, 4, 4)), ("model.26.weight", (64, 128, 3, 3)), ("model.26.bias", (64,)),
       ("model.30.weight", (3, 64, 7, 7)), ("model.30.bias", (3,))]
)


def _public_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in PUBLIC_KEYS:
        if key.endswith("filt"):  # the fixed binomial filters, per channel
            row = torch.tensor([1.0, 2.0, 1.0]) if shape[-1] == 3 else torch.tensor([1.0, 3.0, 3.0, 1.0])
            k = torch.outer(row, row)
            k = k / k.sum() * (1 if shape[-1] == 3 else 4)
            state[key] = k.expand(shape).clone()
        else:
            state[key] = torch.randn(shape, generator=g) * 0.05
    return state


def test_public_generator_checkpoint_loads_and_matches_native(tmp_path: Path) -> None:
    assert len(PUBLIC_KEYS) == 52
    state = _public_state_dict()
    path = tmp_path / "latest_net_G.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, path)  # saved from DataParallel
    loaded = load_generator(path)
    native = ResnetGenerator()
    own = native.state_dict()
    assert len(own) == len(state)
    for key, value in state.items():  # place each public tensor at the same position by hand
        own[key.replace("model.", "layers.", 1)].copy_(value)
    x = torch.rand(1, 3, 36, 44) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), native(x))
    # And through the translator (native resolution, padded to 4 and cropped back).
    out = Translator(loaded, torch.device("cpu")).translate_tensor(torch.rand(1, 3, 37, 45) * 2 - 1)
    assert out.shape == (1, 3, 37, 45)


def test_public_checkpoint_loading_runs_no_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil_net_G.pth"
    torch.save({"model.1.weight": Evil()}, path)
    with pytest.raises(CheckpointError, match="never code"):
        load_generator(path)


def test_translator_native_resolution_and_batching(tmp_path: Path) -> None:
    g = ResnetGenerator(ngf=4, n_blocks=6)
    weights = tmp_path / "G.safetensors"
    save_network(g, weights, "ResnetGenerator")
    tr = Translator.from_checkpoint(weights, device="cpu")
    imgs = [Image.new("RGB", (45, 37), (200, 10, 10)), Image.new("L", (20, 20), 128), Image.new("RGB", (45, 37))]
    out = tr.translate_images(imgs, batch_size=2)
    assert [o.size for o in out] == [(45, 37), (20, 20), (45, 37)]
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(tr.translate_tensor(x), g(x), atol=1e-6)
    bf16 = Translator.from_checkpoint(weights, device="cpu", precision="bf16").translate_tensor(x)
    assert (bf16 - g(x)).abs().max() < 0.1


def test_translate_bad_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_generator(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        load_generator(tmp_path / "empty")
    bad = tmp_path / "x_net_G.pth"
    torch.save({"foo": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError, match="not a ResnetGenerator"):
        load_generator(bad)
