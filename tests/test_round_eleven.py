"""Round eleven, a confirmation probe of issue 24's classes aimed at StegoGAN, DRIT, `translate` on checkpoints of
every method, `eval`, the data tools, the report, the app's Python entry and resume after an interruption. Each test
reproduced a defect first."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from srunit.data import load_rgb
from srunit.engine.checkpoint import save_checkpoint
from srunit.errors import CheckpointError, ConfigError
from srunit.inference import Translator
from srunit.methods import build_method
from srunit.networks.stegogan import StegoMaskGenerator
from srunit.unmatched import UnmatchedMasks, mask_file

posix = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")


@pytest.fixture(scope="module")
def masks() -> UnmatchedMasks:
    torch.manual_seed(0)
    return UnmatchedMasks(StegoMaskGenerator(ngf=4, n_blocks=2).eval(), torch.device("cpu"))


def test_mask_tensor_refuses_what_translate_tensor_refuses(masks: UnmatchedMasks) -> None:
    # A numpy array was an AttributeError traceback (`'numpy.ndarray' object has no attribute 'dim'`); uint8 pixels
    # and floats in 0..255 gave a mask of garbage without a word; an expanded tensor of 100000 x 100000 pixels (no
    # memory held) asked the allocator for 120 GB.
    with pytest.raises(TypeError, match=r"mask_tensor: y must be a torch tensor .* torch\.from_numpy"):
        masks.mask_tensor(np.zeros((1, 3, 8, 8), np.float32))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"mask_tensor: y is torch\.uint8; .* y\.float\(\) / 127\.5 - 1"):
        masks.mask_tensor(torch.full((1, 3, 8, 8), 200, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"values from 200 to 200; images are values in \[-1, 1\]"):
        masks.mask_tensor(torch.full((1, 3, 8, 8), 200.0))
    with pytest.raises(ValueError, match=r"100000 x 100000 = 10,000,000,000 pixels"):
        masks.mask_tensor(torch.zeros(1, 3, 1, 1).expand(1, 3, 100_000, 100_000))
    assert masks.mask_tensor(torch.zeros(1, 3, 5, 7)).shape == (1, 1, 5, 7)


def _picture(mode: str, side: int, *, alpha: int, seed: int) -> Image.Image:
    """Random pixels that PIL's convert("RGB") reads otherwise than srunit: 16-bit grey, or RGBA of one alpha."""
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (side, side)).astype(np.uint16))
    pixels = rng.integers(0, 256, (side, side, 4)).astype(np.uint8)
    pixels[..., 3] = alpha
    return Image.fromarray(pixels, "RGBA")


@pytest.mark.parametrize("mode", ["I;16", "RGBA"])
def test_mask_images_reads_a_pil_image_as_a_file_is_read(masks: UnmatchedMasks, mode: str, tmp_path: Path) -> None:
    # PIL's convert("RGB") clipped a 16-bit image to white and dropped alpha, so the mask of an image given to the
    # API differed from the mask of the same picture read from its file (as `translate_images` once did).
    image = _picture(mode, 16, alpha=30, seed=0)
    image.save(tmp_path / "x.png")
    from_api = np.asarray(masks.mask_images([image])[0], np.int16)
    from_file = np.asarray(masks.mask_images([load_rgb(tmp_path / "x.png")])[0], np.int16)
    assert np.abs(from_api - from_file).max() <= 1


def test_mask_images_given_one_image_or_a_path_names_the_argument(masks: UnmatchedMasks) -> None:
    with pytest.raises(TypeError, match=r"mask_images: images must be a list of PIL images, got Image"):
        masks.mask_images(Image.new("RGB", (8, 8)))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"mask_images: images\[0\] must be a PIL image, got str"):
        masks.mask_images(["a.png"])  # type: ignore[list-item]


@pytest.fixture(scope="module")
def stego_checkpoint(tiny_config, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    torch.manual_seed(0)
    config = tiny_config("stegogan")
    method = build_method(config.method, config.model)
    return save_checkpoint(tmp_path_factory.mktemp("stego") / "run" / "checkpoints", 1, method.networks(),
                           {"step": 1}, keep=True)


@posix
@pytest.mark.slow  # builds a whole tiny method and saves its checkpoint
def test_a_stegogan_checkpoint_whose_b_to_a_generator_cannot_be_read_is_an_error_not_missing_masks(
        stego_checkpoint: Path, tmp_path: Path) -> None:
    # A G_BA.safetensors that was a FIFO, or that named no network in its metadata, made `from_checkpoint` return
    # None: the app, `eval seg --run` and the report showed a StegoGAN run without its masks, without a word.
    assert mask_file(stego_checkpoint) == stego_checkpoint / "G_BA.safetensors"
    fifo = shutil.copytree(stego_checkpoint, tmp_path / "fifo")
    (fifo / "G_BA.safetensors").unlink()
    os.mkfifo(fifo / "G_BA.safetensors")
    with pytest.raises(CheckpointError, match=r"G_BA.safetensors is a FIFO"):
        UnmatchedMasks.from_checkpoint(fifo, device="cpu")
    unnamed = shutil.copytree(stego_checkpoint, tmp_path / "unnamed")
    with safe_open(str(stego_checkpoint / "G_BA.safetensors"), "pt") as f:
        meta = dict(f.metadata())
    del meta["network"]
    save_file(load_file(stego_checkpoint / "G_BA.safetensors"), unnamed / "G_BA.safetensors", metadata=meta)
    with pytest.raises(CheckpointError, match=r"G_BA.safetensors names no network in its srunit metadata"):
        UnmatchedMasks.from_checkpoint(unnamed, device="cpu")
    one_sided = shutil.copytree(stego_checkpoint, tmp_path / "one-sided")
    (one_sided / "G_BA.safetensors").unlink()
    assert UnmatchedMasks.from_checkpoint(one_sided, device="cpu") is None  # no B -> A generator: no masks


@pytest.fixture(scope="module")
def drit(tiny_config, tmp_path_factory: pytest.TempPathFactory) -> Translator:  # noqa: ANN001
    torch.manual_seed(0)
    config = tiny_config("drit")
    method = build_method(config.method, config.model)
    folder = save_checkpoint(tmp_path_factory.mktemp("drit") / "run" / "checkpoints", 1, method.networks(),
                             {"step": 1}, keep=True)
    return Translator.from_checkpoint(folder, device="cpu")


@pytest.mark.slow  # builds a whole tiny method and saves its checkpoint
@pytest.mark.parametrize("mode", ["I;16", "RGBA"])
def test_a_reference_pil_image_gives_the_code_of_its_file(drit: Translator, mode: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # PIL's convert("RGB") clipped a 16-bit reference to white and dropped alpha: `attribute=image` and
    # `attribute="image.png"` (srunit translate --reference) gave two codes for one picture.
    image = _picture(mode, 32, alpha=60, seed=1)
    image.save(tmp_path / "ref.png")
    seen: list[torch.Tensor] = []  # what the attribute encoder is given (a tiny random encoder barely reacts to it)
    encode = drit.generator.encode_attribute
    monkeypatch.setattr(drit.generator, "encode_attribute", lambda x: seen.append(x.clone()) or encode(x))
    from_api, from_file = drit.attribute_code(image), drit.attribute_code(tmp_path / "ref.png")
    assert from_api is not None and from_file is not None and len(seen) == 2
    torch.testing.assert_close(seen[0], seen[1])
    torch.testing.assert_close(from_api, from_file)


@pytest.mark.slow  # builds a whole tiny method and saves its checkpoint
def test_a_reference_that_is_a_folder_names_the_option(drit: Translator, tmp_path: Path) -> None:
    # `translate --reference DIR` said "image file DIR is a folder, ...; replace or delete the file": the option
    # unnamed and advice to delete the user's folder.
    with pytest.raises(ConfigError,
                       match=r"^--reference .* is a folder, not a regular file; .*; give one domain-B image file$"):
        drit.attribute_code(tmp_path, "--reference")


def test_eval_paired_refuses_one_folder_as_prediction_and_target(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    # `eval paired --pred DIR --target DIR` (or through a link) scored every image against itself: Dist 0.00,
    # Acc 100 %, status 0, as `eval seg` did with one folder for images and labels (round nine). The command refuses
    # it; paired_scores takes it (the benchmark's upper bound scores the ground truth against itself).
    from srunit.cli.main import main
    from srunit.eval.paired import paired_scores

    folder = tmp_path / "p"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8, 3)).astype(np.uint8)).save(folder / "a.png")
    (tmp_path / "link").symlink_to(folder)
    for target in (folder, tmp_path / "link"):
        assert main(["eval", "paired", "--pred", str(folder), "--target", str(target)]) == 2
        assert "--pred and --target are the same folder" in capsys.readouterr().err
    assert paired_scores(folder, tmp_path / "link").dist == 0.0


def test_eval_fid_refuses_one_folder_as_real_and_fake(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # `eval fid --real DIR --fake DIR` printed FID 0.0000 and KID 0.000000, status 0: one set against itself.
    from srunit.cli.main import main

    folder = tmp_path / "r"
    folder.mkdir()
    for i in range(2):
        pixels = np.random.default_rng(i).integers(0, 256, (8, 8, 3)).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    (tmp_path / "link").symlink_to(folder)
    (tmp_path / "w.pt").write_bytes(b"not read")
    assert main(["eval", "fid", "--real", str(folder), "--fake", str(tmp_path / "link"), "--weights",
                 str(tmp_path / "w.pt")]) == 2
    assert "--real and --fake are the same folder" in capsys.readouterr().err


def test_translation_demo_given_run_folders_names_the_argument_and_from_checkpoints() -> None:
    # `TranslationDemo(["runs/cut"])` (run folders where DemoModel objects belong) was an AttributeError traceback:
    # 'str' object has no attribute 'checkpoint'.
    from srunit.app import TranslationDemo

    with pytest.raises(TypeError, match=r"models\[0\] must be a DemoModel, got str .*from_checkpoints"):
        TranslationDemo(["runs/cut"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"models must be a list of DemoModel objects, got str .*from_checkpoints"):
        TranslationDemo("runs/cut")  # type: ignore[arg-type]
