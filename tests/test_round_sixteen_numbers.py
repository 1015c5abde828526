"""Round sixteen (A), a confirmation probe of issue 24's classes aimed at the numbers the docs promise (the
learning-rate schedule, checkpoints, samples, metrics, scores of known images) and at images of every kind.
Each test reproduced a defect first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.data.images import load_rgb, pil_to_tensor, to_rgb


def _grey_and_colour(tmp_path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (6, 8), dtype=np.uint8)
    colour = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    wide = rng.integers(0, 65536, (6, 8)).astype(np.uint16)
    grey[0, 0], colour[0, 0], wide[0, 0] = 77, (10, 20, 30), 4000
    grey[5, 7], colour[5, 7], wide[5, 7] = 77, (10, 20, 30), 4000
    return grey, colour, wide


@pytest.mark.parametrize("kind", ["L", "RGB", "I;16"])
def test_a_png_key_colour_is_transparent_as_a_palettes_transparent_entry_is(tmp_path: Path, kind: str) -> None:
    """A grey, 16-bit or RGB PNG with a tRNS chunk (one value or colour viewers show fully transparent) was read as
    if the chunk were not there, while a palette PNG's transparent entries were composited onto black: the same
    picture saved by an editor as palette or as grey read differently in training, translate, eval and the app."""
    grey, colour, wide = _grey_and_colour(tmp_path)
    if kind == "L":
        arr, key, want = grey, 77, np.repeat(grey[..., None], 3, axis=2)
        hidden = grey == 77
    elif kind == "RGB":
        arr, key, want = colour, (10, 20, 30), colour.copy()
        hidden = np.all(colour == (10, 20, 30), axis=-1)
    else:
        arr, key = wide, 4000
        want = np.repeat(np.rint(wide / 257.0).astype(np.uint8)[..., None], 3, axis=2)
        hidden = wide == 4000
    want = want.copy()
    want[hidden] = 0  # composited onto black, as the docs say of transparent pixels
    path = tmp_path / "keyed.png"
    Image.fromarray(arr).save(path, transparency=key)
    assert "transparency" in Image.open(path).info  # the file holds the chunk
    got = np.asarray(load_rgb(path))
    assert hidden.sum() >= 2 and np.array_equal(got, want)
    # A PIL image given to the API reads as its file does.
    assert np.array_equal(np.asarray(to_rgb(Image.open(path))), want)
    assert pil_to_tensor(Image.open(path)).shape == (3, 6, 8)


def test_an_image_without_a_key_colour_reads_as_before(tmp_path: Path) -> None:
    """The key colour's pixels only: the same files without a tRNS chunk keep every pixel."""
    grey, colour, wide = _grey_and_colour(tmp_path)
    for name, arr in (("g.png", grey), ("c.png", colour), ("w.png", wide)):
        Image.fromarray(arr).save(tmp_path / name)
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "g.png")), np.repeat(grey[..., None], 3, axis=2))
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "c.png")), colour)
    assert np.array_equal(np.asarray(load_rgb(tmp_path / "w.png")),
                          np.repeat(np.rint(wide / 257.0).astype(np.uint8)[..., None], 3, axis=2))


def test_the_docs_say_which_translate_the_app_equals_pixel_for_pixel() -> None:
    """docs/after-training.md said the app's translations are the pixels `srunit translate` writes (tested pixel
    for pixel); `translate` batches images of one size (8 by default) and a batched convolution may round a pixel to
    the next level: of 51 files, one pixel of one differed. The app equals `translate --batch-size 1`."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "after-training.md").read_text(encoding="utf-8")
    text = " ".join(text.split())
    assert "the pixels `srunit translate` writes for the same file (tested pixel for pixel)" not in text
    assert "the pixels `srunit translate --batch-size 1` writes for the same file (tested pixel for pixel)" in text


@pytest.mark.slow
def test_the_app_gives_the_pixels_of_translate_with_batch_size_1(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """What the docs now promise: each upload's translation equals `translate --batch-size 1` (the Translator with
    batch_size=1) pixel for pixel, for files of one size that `translate` would batch."""
    from srunit import Translator
    from srunit.app import TranslationDemo

    rng = np.random.default_rng(2)
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(paths[-1])
    demo = TranslationDemo.from_checkpoints([tiny_runs["cut"]], device="cpu")
    translator = Translator.from_checkpoint(tiny_runs["cut"], device="cpu")
    one_by_one = translator.translate_images([load_rgb(p) for p in paths], batch_size=1)
    for path, want in zip(paths, one_by_one):
        [got] = demo.translate_file(path)
        assert np.array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_a_tiffs_size_from_its_header_is_the_size_it_loads_at(tmp_path: Path, orientation: int) -> None:
    """A TIFF stored 33 x 64 and tagged to be turned a quarter (orientations 5-8) loads 64 x 33, but its header size
    was given as 33 x 64: Pillow already reports a TIFF's size turned, and srunit turned it again. `data maps`
    refused such a side-by-side image as 33 pixels wide, an odd width, though it loads 64 wide."""
    from srunit.data.images import image_header, image_size
    from srunit.datasets.pix2pix import split_side_by_side

    stored = np.random.default_rng(orientation).integers(0, 256, (64, 33, 3), dtype=np.uint8)  # 33 wide, 64 high
    src = tmp_path / "maps"
    src.mkdir()
    Image.fromarray(stored).save(src / "m.tif", tiffinfo={274: orientation})
    loaded = load_rgb(src / "m.tif")
    assert loaded.size == (64, 33)  # turned as viewers show it
    assert image_size(src / "m.tif") == loaded.size == image_header(src / "m.tif").size
    assert split_side_by_side(src, tmp_path / "out") == 1
    assert Image.open(tmp_path / "out" / "A" / "m.png").size == (32, 33)
    assert Image.open(tmp_path / "out" / "B" / "m.png").size == (32, 33)


def test_the_header_size_of_other_formats_is_still_turned(tmp_path: Path) -> None:
    """PNG, JPEG and WebP report their stored size: a quarter-turn tag still swaps it, as load_rgb turns the pixels."""
    from srunit.data.images import image_size

    exif = Image.Exif()
    exif[0x0112] = 6
    for name in ("o.png", "o.jpg", "o.webp"):
        Image.new("RGB", (32, 20)).save(tmp_path / name, exif=exif.tobytes())
        assert image_size(tmp_path / name) == load_rgb(tmp_path / name).size == (20, 32)
