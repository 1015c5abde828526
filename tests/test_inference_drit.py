"""srunit.inference with DRIT checkpoints: loading, attribute codes from seeds, reference images and tensors,
and the errors of attribute options on unimodal checkpoints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from srunit.data import pil_to_tensor
from srunit.engine.checkpoint import save_checkpoint
from srunit.errors import CheckpointError, ConfigError
from srunit.inference import Translator, load_generator
from srunit.methods import build_method
from srunit.networks import ResnetGenerator
from srunit.networks.drit import DRITTranslator
from srunit.runtime.network_files import save_network
from srunit.runtime.translation import attribute_from_seed


@pytest.fixture
def drit_checkpoint(tiny_config, tmp_path: Path):  # noqa: ANN201 - (method, checkpoint folder)
    config = tiny_config("drit")
    torch.manual_seed(0)
    method = build_method(config.method, config.model)
    folder = save_checkpoint(tmp_path / "run" / "checkpoints", 1, method.networks(), {"step": 1}, keep=True)
    return method.eval(), folder


def _x(h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_drit_checkpoints_load_as_translators_of_the_trained_networks(drit_checkpoint) -> None:
    method, folder = drit_checkpoint
    for path in (folder.parent.parent, folder, folder / "G.safetensors"):
        assert isinstance(load_generator(path), DRITTranslator)
    tr = Translator.from_checkpoint(folder.parent.parent, device="cpu")
    assert tr.multimodal and not tr.generator.training
    x = _x(32, 48)
    with torch.no_grad():
        expected = method.G.decode_b(method.E_c.encode_a(x), attribute_from_seed(3, 8)[None])
    assert torch.allclose(tr.translate_tensor(x, attribute=3), expected, atol=1e-6)
    # No attribute: the code of seed 0, as the method's own `generator` module uses.
    with torch.no_grad():
        assert torch.allclose(tr.translate_tensor(x), method.generator(x), atol=1e-6)
    assert torch.equal(tr.translate_tensor(x), tr.translate_tensor(x, attribute=0))


def test_seeds_are_reproducible_and_differ(drit_checkpoint) -> None:
    _, folder = drit_checkpoint
    tr = Translator.from_checkpoint(folder, device="cpu")
    images = [Image.new("RGB", (45, 37), (200, 40, 10)), Image.new("RGB", (20, 20), (10, 90, 200))]
    one = tr.translate_images(images, attribute=1)
    assert [o.size for o in one] == [(45, 37), (20, 20)]
    again = Translator.from_checkpoint(folder, device="cpu").translate_images(images, attribute=1)
    two = tr.translate_images(images, attribute=2)
    for a, b, c in zip(one, again, two):
        assert torch.equal(pil_to_tensor(a), pil_to_tensor(b)) and not torch.equal(pil_to_tensor(a), pil_to_tensor(c))


def test_reference_image_gives_the_mean_of_its_attribute_code(drit_checkpoint, tmp_path: Path) -> None:
    method, folder = drit_checkpoint
    tr = Translator.from_checkpoint(folder, device="cpu")
    ref = Image.fromarray((torch.rand(24, 28, 3, generator=torch.Generator().manual_seed(4)) * 255).byte().numpy())
    ref.save(tmp_path / "ref.png")
    with torch.no_grad():
        code = method.E_a.encode_b(pil_to_tensor(ref)[None])[0][0]
    assert torch.allclose(tr.attribute_code(ref), code, atol=1e-6)
    assert torch.allclose(tr.attribute_code(tmp_path / "ref.png"), code, atol=1e-6)
    assert torch.allclose(tr.attribute_code(str(tmp_path / "ref.png")), code, atol=1e-6)
    x = _x()
    assert torch.allclose(tr.translate_tensor(x, attribute=ref), tr.translate_tensor(x, attribute=code), atol=1e-6)
    written = tr.translate_folder(tmp_path / "ref.png", tmp_path / "out", attribute=ref)
    assert written == [tmp_path / "out" / "ref.png"]


@pytest.mark.slow  # two DRIT encodings; test_reference_image_gives_the_mean_of_its_attribute_code runs fast
def test_an_animated_reference_is_warned_of_and_read_from_its_first_frame(drit_checkpoint, tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    """translate warned of inputs of several frames but not of a reference of several frames."""
    _, folder = drit_checkpoint
    tr = Translator.from_checkpoint(folder, device="cpu")
    frames = [Image.new("RGB", (24, 24), c) for c in ((10, 200, 30), (200, 10, 30))]
    frames[0].save(tmp_path / "moving.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "still.png")
    with caplog.at_level("WARNING", logger="srunit"):
        code = tr.attribute_code(tmp_path / "moving.gif", "--reference")
    says = f"--reference {tmp_path / 'moving.gif'} holds several frames; its first frame is the reference"
    assert says in caplog.text
    assert torch.equal(code, tr.attribute_code(tmp_path / "still.png"))


def test_bad_attributes_are_config_errors_naming_the_option(drit_checkpoint) -> None:
    _, folder = drit_checkpoint
    tr = Translator.from_checkpoint(folder, device="cpu")
    with pytest.raises(ConfigError, match=re.escape("--reference: the reference image is 12x10 pixels; the attribute "
                                                    "encoder needs at least 16x16")):
        tr.attribute_code(Image.new("RGB", (12, 10)), "--reference")
    with pytest.raises(ConfigError, match=re.escape("attribute: an attribute code of this checkpoint has shape (8,), "
                                                    "got (2, 8)")):
        tr.translate_tensor(_x(), attribute=torch.zeros(2, 8))
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigError, match=re.escape(f"--attribute-seed must be an integer >= 0, got {bad!r}")):
            tr.attribute_code(bad, "--attribute-seed")  # type: ignore[arg-type]


def test_unimodal_checkpoints_refuse_attribute_options_and_work_without(tmp_path: Path) -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(ngf=4, n_blocks=6).eval()
    save_network(g, tmp_path / "G.safetensors", "ResnetGenerator")
    tr = Translator.from_checkpoint(tmp_path / "G.safetensors", device="cpu")
    assert not tr.multimodal and tr.attribute_code(None) is None
    for attribute, option in ((3, "attribute"), (Image.new("RGB", (32, 32)), "--reference")):
        with pytest.raises(ConfigError, match=re.escape(f"{option}: this checkpoint's generator (ResnetGenerator) "
                                                        f"gives one output per image")):
            tr.attribute_code(attribute, option)
    with pytest.raises(ConfigError, match="attribute: this checkpoint's generator"):
        tr.translate_images([Image.new("RGB", (8, 8))], attribute=0)
    x = _x(16, 16)
    with torch.no_grad():
        assert torch.allclose(tr.translate_tensor(x), g(x), atol=1e-6)


def test_incomplete_drit_checkpoints_name_the_missing_file(drit_checkpoint) -> None:
    _, folder = drit_checkpoint
    (folder / "E_a.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"E_a\.safetensors is missing; a DRIT checkpoint folder holds E_c, E_a"):
        load_generator(folder)
    save_file(load_file(str(folder / "D_A.safetensors")), str(folder / "E_a.safetensors"),
              metadata={"format": "srunit", "network": "MultiScaleDiscriminator", "config": "{}"})
    with pytest.raises(
        CheckpointError,
        match="holds a MultiScaleDiscriminator, not a DRITAttributeEncoder; a DRIT checkpoint folder holds E_c, E_a",
    ):
        load_generator(folder)


def test_attribute_seeds_outside_0_to_2_pow_64_are_named_errors(drit_checkpoint) -> None:
    _, folder = drit_checkpoint
    tr = Translator.from_checkpoint(folder, device="cpu")
    for bad in (2**64, 2**200):
        with pytest.raises(ConfigError, match=re.escape(f"--attribute-seed must be an integer from 0 to 2**64 - 1 "
                                                        f"(18446744073709551615), got {bad}")):
            tr.attribute_code(bad, "--attribute-seed")
    with pytest.raises(ConfigError, match=re.escape("attribute must be an integer from 0 to 2**64 - 1")):
        tr.translate_images([Image.new("RGB", (16, 16))], attribute=2**64)
    with pytest.raises(ConfigError, match=re.escape("seed must be an integer from 0 to 2**64 - 1")):
        attribute_from_seed(2**64, 8)
    assert torch.equal(tr.attribute_code(2**64 - 1), attribute_from_seed(2**64 - 1, 8))


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (3, 7)])
def test_drit_translates_images_of_any_size(drit_checkpoint, size: tuple[int, int]) -> None:
    _, folder = drit_checkpoint
    out = Translator.from_checkpoint(folder, device="cpu").translate_tensor(_x(*size), attribute=3)
    assert out.shape == (1, 3, *size) and torch.isfinite(out).all()
