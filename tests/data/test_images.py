"""srunit.data.images: decoding any image mode to RGB, tensors, grids and PNG files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from srunit.data import image_size, load_rgb, make_grid, pil_to_tensor, png_bytes, save_image_grid, tensor_to_pil
from srunit.data.images import SKIP_HINT
from srunit.errors import DataError


def _mode(path: Path) -> str:
    with Image.open(path) as img:
        return img.mode


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def test_load_rgb_grayscale_and_bilevel(tmp_path: Path) -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    p = tmp_path / "g.png"
    Image.fromarray(gray).save(p)
    img = load_rgb(p)
    assert img.mode == "RGB" and img.size == (4, 3)
    assert np.array_equal(np.asarray(img), np.repeat(gray[..., None], 3, axis=2))

    p1 = tmp_path / "b.png"
    Image.fromarray(gray > 100).save(p1)
    assert _mode(p1) == "1"
    out = np.asarray(load_rgb(p1))
    assert set(np.unique(out)) <= {0, 255}


def test_load_rgb_alpha_composited_on_black(tmp_path: Path) -> None:
    rgba = np.array([[[200, 100, 50, 255], [200, 100, 50, 128], [200, 100, 50, 0]]],
                    dtype=np.uint8)
    p = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(p)
    out = np.asarray(load_rgb(p))
    assert out[0, 0].tolist() == [200, 100, 50]
    assert out[0, 1].tolist() == [100, 50, 25]
    assert out[0, 2].tolist() == [0, 0, 0]

    p_la = tmp_path / "la.png"
    Image.fromarray(np.array([[[200, 255], [200, 0]]], dtype=np.uint8), mode="LA").save(p_la)
    assert np.asarray(load_rgb(p_la))[0].tolist() == [[200] * 3, [0] * 3]


def test_load_rgb_palette_with_and_without_transparency(tmp_path: Path) -> None:
    pal = Image.new("P", (2, 1))
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putdata([0, 1])
    p = tmp_path / "p.png"
    pal.save(p)
    assert np.asarray(load_rgb(p))[0].tolist() == [[255, 0, 0], [0, 255, 0]]

    pt = tmp_path / "pt.png"
    pal.save(pt, transparency=0)
    with Image.open(pt) as reread:
        assert reread.info.get("transparency") == 0
    assert np.asarray(load_rgb(pt))[0].tolist() == [[0, 0, 0], [0, 255, 0]]

    gif = tmp_path / "p.gif"
    pal.save(gif)
    assert load_rgb(gif).mode == "RGB"


def test_load_rgb_16bit_scaled_not_clipped(tmp_path: Path) -> None:
    a = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(a).save(p)
    assert _mode(p).startswith("I")
    out = np.asarray(load_rgb(p))[0, :, 0]
    assert out.tolist() == [0, 1, 128, 255]

    # Big-endian 16-bit and 32-bit "I" (how Pillow exposes 16-bit PGM) scale the same way.
    big = Image.frombytes("I;16B", (4, 1), a.astype(">u2").tobytes())
    p_tif = tmp_path / "g16b.tif"
    big.save(p_tif)
    assert np.asarray(load_rgb(p_tif))[0, :, 0].tolist() == [0, 1, 128, 255]
    p_pgm = tmp_path / "g16.pgm"
    Image.fromarray(a).save(p_pgm)
    assert np.asarray(load_rgb(p_pgm))[0, :, 1].tolist() == [0, 1, 128, 255]

    f = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    p_f = tmp_path / "f.tif"
    f.save(p_f)
    assert np.asarray(load_rgb(p_f))[0, :, 2].tolist() == [0, 128, 255]


def test_load_rgb_cmyk(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (2, 2), (0, 0, 0, 0))
    p = tmp_path / "c.tif"
    cmyk.save(p)
    assert _mode(p) == "CMYK"
    out = load_rgb(p)
    assert out.mode == "RGB" and np.all(np.asarray(out) == 255)


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_truncated_image_raises_even_if_pil_flag_set(tmp_path: Path, fmt: str, write_image,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    p = _truncate(write_image(tmp_path / f"t.{fmt}", size=(64, 64)))
    with pytest.raises(DataError) as e:
        load_rgb(p)
    msg = str(e.value)
    assert str(p) in msg and "truncated" in msg and "replace or delete the file" in msg
    assert "--data." not in msg  # the default names no option: translate, eval and report have no data.* options

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(DataError):
        load_rgb(p)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_non_image_file_raises(tmp_path: Path) -> None:
    p = tmp_path / "fake.png"
    p.write_text("this is not an image")
    with pytest.raises(DataError) as e:
        load_rgb(p)
    assert str(p) in str(e.value) and "replace or delete the file" in str(e.value)
    with pytest.raises(DataError, match="skip_bad_images"):  # the training loader's advice, when it asks for it
        load_rgb(p, fix=SKIP_HINT)
    with pytest.raises(DataError, match="does not exist"):
        load_rgb(tmp_path / "missing.png")


def test_tensor_round_trip_and_range(rand_rgb) -> None:
    arr = rand_rgb(5, 7)
    arr[0, 0] = 0
    arr[0, 1] = 255
    x = pil_to_tensor(Image.fromarray(arr))
    assert x.shape == (3, 5, 7) and x.dtype == torch.float32
    assert x.min() == -1.0 and x.max() == 1.0
    assert np.array_equal(np.asarray(tensor_to_pil(x)), arr)
    assert np.array_equal(np.asarray(tensor_to_pil(x.to(torch.float16))), arr)
    clamped = np.asarray(tensor_to_pil(torch.full((3, 2, 2), 3.0)))
    assert np.all(clamped == 255)
    assert np.asarray(tensor_to_pil(torch.zeros(3, 1, 1)))[0, 0, 0] == 128


def test_make_grid_and_save_image_grid(tmp_path: Path) -> None:
    imgs = -torch.ones(5, 3, 4, 6)
    g = make_grid(imgs, ncol=3)
    assert g.shape == (3, 2 * 4 + 2, 3 * 6 + 2 * 2)
    assert torch.all(g[:, 4:6, :] == 1.0)  # white padding row
    assert torch.all(g[:, 6:, 16:] == 1.0)  # empty sixth cell

    out = tmp_path / "samples" / "step_10.png"
    rows = [[torch.zeros(3, 8, 8), torch.ones(3, 8, 8), -torch.ones(3, 6, 10)]] * 2
    save_image_grid(rows, out)
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (3 * 10 + 4, 2 * 8 + 2)
    assert [p.name for p in out.parent.iterdir()] == ["step_10.png"]  # no temp file left


def test_image_size_reads_the_header_only(tmp_path: Path, write_image) -> None:
    p = write_image(tmp_path / "i.png", size=(30, 40))
    assert image_size(p) == (40, 30)  # (width, height)
    assert image_size(_truncate(write_image(tmp_path / "t.png", size=(64, 64)))) == (64, 64)  # pixels not decoded
    junk = tmp_path / "junk.png"
    junk.write_text("not an image")
    with pytest.raises(DataError) as e:
        image_size(junk, fix="replace or remove it")
    assert str(junk) in str(e.value) and str(e.value).endswith("; replace or remove it")
    with pytest.raises(DataError, match="does not exist.*replace or delete the file"):
        image_size(tmp_path / "missing.png")


def test_png_bytes_is_a_lossless_png(rand_rgb) -> None:
    arr = rand_rgb(6, 5, seed=3)
    data = png_bytes(Image.fromarray(arr))
    assert data.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG" and np.array_equal(np.asarray(img), arr)
