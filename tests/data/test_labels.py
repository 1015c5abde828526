"""srunit.data.labels: label colour images to class ids, and reading label map files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.data.labels import CITYSCAPES_TRAIN_COLOURS, IGNORE_LABEL, PALETTES, colours_to_ids, load_label_map
from srunit.errors import ConfigError, DataError


def test_colours_to_ids_hand_example() -> None:
    colours = [(10, 20, 30), (0, 0, 0), (255, 255, 255)]  # ids 0, 1, 2 (not sorted by colour)
    rgb = np.array([[[0, 0, 0], [10, 20, 30], [255, 255, 255]],
                    [[10, 20, 31], [1, 0, 0], [255, 255, 255]]], dtype=np.uint8)
    ids = colours_to_ids(rgb, colours)
    assert ids.dtype == np.uint8
    np.testing.assert_array_equal(ids, [[1, 0, 2], [255, 255, 2]])  # unknown colours -> 255
    np.testing.assert_array_equal(colours_to_ids(rgb, colours, ignore=9), [[1, 0, 2], [9, 9, 2]])
    assert IGNORE_LABEL == 255
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) colour array"):
        colours_to_ids(rgb[..., 0], colours)


def test_load_label_map_single_channel_files(tmp_path: Path) -> None:
    ids = np.array([[0, 1, 2], [255, 7, 0]], np.uint8)
    Image.fromarray(ids, mode="L").save(tmp_path / "l.png")
    out = load_label_map(tmp_path / "l.png")
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, ids)
    pal = Image.fromarray(ids, mode="L").convert("P")
    pal.save(tmp_path / "p.png")
    np.testing.assert_array_equal(load_label_map(tmp_path / "p.png"), np.asarray(pal))  # palette index = id
    wide = np.array([[0, 300, 19]], np.uint16)
    Image.fromarray(wide).save(tmp_path / "i16.png")
    np.testing.assert_array_equal(load_label_map(tmp_path / "i16.png"), wide)


def test_load_label_map_cityscapes_colours(tmp_path: Path) -> None:
    assert PALETTES["cityscapes"] == CITYSCAPES_TRAIN_COLOURS
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0] = [
        CITYSCAPES_TRAIN_COLOURS[0],
        CITYSCAPES_TRAIN_COLOURS[13],
        CITYSCAPES_TRAIN_COLOURS[18],
    ]  # road car bicycle
    rgb[1] = [(70, 130, 180), (1, 2, 3), (0, 0, 0)]  # sky, then two colours of no train class
    path = tmp_path / "colour.png"
    Image.fromarray(rgb).save(path)
    out = load_label_map(path, palette="cityscapes")
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [[0, 13, 18], [10, 255, 255]])
    rgba = np.concatenate([rgb, np.full((2, 3, 1), 255, np.uint8)], axis=2)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(load_label_map(tmp_path / "rgba.png", palette="cityscapes"), out)


def test_load_label_map_errors(tmp_path: Path) -> None:
    colour = tmp_path / "colour.png"
    Image.new("RGB", (4, 1)).save(colour)
    with pytest.raises(DataError, match=re.escape(f"label map {colour} is a colour image (mode RGB)")):
        load_label_map(colour)
    with pytest.raises(ConfigError, match=re.escape("--palette 'ade20k' is unknown; use --palette cityscapes")):
        load_label_map(colour, palette="ade20k")
    cmyk = tmp_path / "c.tif"
    Image.new("CMYK", (2, 2)).save(cmyk)
    with pytest.raises(DataError, match="has image mode CMYK"):
        load_label_map(cmyk)
    junk = tmp_path / "junk.png"
    junk.write_text("no image")
    with pytest.raises(DataError, match=re.escape(f"cannot read label map {junk}")):
        load_label_map(junk)


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A 1x1 grayscale PNG whose header claims ``width`` x ``height`` pixels (a few bytes on disk)."""
    import struct
    import zlib

    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    path.write_bytes(bytes(data))
    return path


def test_a_label_map_header_claiming_huge_dimensions_is_refused_before_decoding(tmp_path: Path) -> None:
    path = _png_claiming(tmp_path / "huge.png", 20000, 20000)  # 400 M pixels: PIL's own bomb error otherwise
    with pytest.raises(DataError, match=r"label map .*huge\.png has more than the limit of 16,777,216 pixels"):
        load_label_map(path)
    path = _png_claiming(tmp_path / "big.png", 5000, 5000)  # would decode 25 M pixels
    with pytest.raises(DataError, match=r"label map .*big\.png is 5000 x 5000 = 25,000,000 pixels, more than"):
        load_label_map(path)
