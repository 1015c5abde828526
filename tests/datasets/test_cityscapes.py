"""srunit.datasets.cityscapes: the label conventions and the conversion of a Cityscapes download."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.datasets import (
    CITYSCAPES_CLASSES,
    CITYSCAPES_LABEL_TO_TRAIN_ID,
    CITYSCAPES_TRAIN_COLOURS,
    colours_to_ids,
    label_ids_to_train_ids,
    prepare_cityscapes,
)
from srunit.errors import ConfigError, DataError


def _cityscapes_tree(root: Path) -> None:
    ids = np.repeat(np.array([7, 26, 0, 33], np.uint8), 4)[None, :].repeat(8, axis=0)  # 4 stripes, 16x8
    colours = np.zeros((8, 16, 3), np.uint8)
    colours[:, :4] = (128, 64, 128)  # road
    colours[:, 4:8] = (0, 0, 142)  # car
    for split, city, seq in (("train", "aachen", 0), ("train", "bremen", 1), ("val", "lindau", 2)):
        stem = f"{city}_{seq:06d}_000019"
        p = root / "leftImg8bit" / split / city
        g = root / "gtFine" / split / city
        p.mkdir(parents=True, exist_ok=True)
        g.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 16, 3), 40 * (seq + 1), np.uint8)).save(p / f"{stem}_leftImg8bit.png")
        Image.fromarray(colours).save(g / f"{stem}_gtFine_color.png")
        Image.fromarray(ids).save(g / f"{stem}_gtFine_labelIds.png")


def test_prepare_cityscapes(tmp_path: Path) -> None:
    root, out = tmp_path / "cs", tmp_path / "out"
    _cityscapes_tree(root)
    assert prepare_cityscapes(root, out, size=(8, 4)) == {"train": 2, "val": 1}
    assert sorted(p.name for p in (out / "trainA").iterdir()) == [
        "aachen_000000_000019.png",
        "bremen_000001_000019.png",
    ]
    photo = Image.open(out / "valB" / "lindau_000002_000019.png")
    assert photo.size == (8, 4) and photo.mode == "RGB"
    train_ids = np.asarray(Image.open(out / "train_labels" / "aachen_000000_000019.png"))
    assert train_ids.shape == (4, 8)
    np.testing.assert_array_equal(train_ids[0], [0, 0, 13, 13, 255, 255, 18, 18])  # road, car, unlabeled, bicycle
    colour = np.asarray(Image.open(out / "trainA" / "aachen_000000_000019.png"))
    assert (colour[:, :2] == (128, 64, 128)).all() and (colour[:, 2:4] == (0, 0, 142)).all()
    np.testing.assert_array_equal(
        colours_to_ids(colour, CITYSCAPES_TRAIN_COLOURS)[0], [0, 0, 13, 13, 255, 255, 255, 255]
    )


def test_prepare_cityscapes_errors(tmp_path: Path) -> None:
    root = tmp_path / "cs"
    _cityscapes_tree(root)
    (root / "gtFine" / "train" / "bremen" / "bremen_000001_000019_gtFine_color.png").unlink()
    with pytest.raises(DataError, match="bremen_000001_000019_leftImg8bit.png has no label file"):
        prepare_cityscapes(root, tmp_path / "out", size=(8, 4))
    assert not (tmp_path / "out").exists()
    (root / "leftImg8bit" / "train" / "bremen" / "bremen_000001_000019_leftImg8bit.png").unlink()
    with pytest.raises(DataError, match="bremen_000001_000019_gtFine_labelIds.png has no photo"):
        prepare_cityscapes(root, tmp_path / "out", size=(8, 4))
    with pytest.raises(DataError, match="nowhere/gtFine does not exist"):
        (tmp_path / "nowhere" / "leftImg8bit").mkdir(parents=True)
        prepare_cityscapes(tmp_path / "nowhere", tmp_path / "out")


def test_a_link_loop_or_a_linked_city_lists_each_file_once(tmp_path: Path) -> None:
    """A link inside a city back to its split (a loop), or a second link to a city, was reported as two files of
    one name ("Cityscapes files A and A/loop/A have the same name"); each real folder is now read once, as the
    training data's scan reads it, and the conversion writes each image once."""
    root, out = tmp_path / "cs", tmp_path / "out"
    _cityscapes_tree(root)
    (root / "leftImg8bit" / "train" / "aachen" / "loop").symlink_to("..")
    (root / "gtFine" / "train" / "bremen_again").symlink_to("bremen")
    assert prepare_cityscapes(root, out, size=(8, 4)) == {"train": 2, "val": 1}
    assert sorted(p.name for p in (out / "trainB").iterdir()) == ["aachen_000000_000019.png",
                                                                  "bremen_000001_000019.png"]


def test_cityscapes_label_conventions() -> None:
    assert len(CITYSCAPES_CLASSES) == 19 and CITYSCAPES_CLASSES[0] == "road" and CITYSCAPES_CLASSES[-1] == "bicycle"
    assert len(CITYSCAPES_TRAIN_COLOURS) == 19 and len(set(CITYSCAPES_TRAIN_COLOURS)) == 19
    assert sorted(CITYSCAPES_LABEL_TO_TRAIN_ID.values()) == list(range(19))
    ids = np.array([[7, 8, 26, 33], [0, 6, 255, 23]], np.uint8)  # road, sidewalk, car, bicycle / void ... sky
    np.testing.assert_array_equal(label_ids_to_train_ids(ids), [[0, 1, 13, 18], [255, 255, 255, 10]])


def test_prepare_cityscapes_size_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--width must be an integer from 1 to"):
        prepare_cityscapes(tmp_path, tmp_path / "out", size=(0, 256))


@pytest.mark.parametrize("side", [5000, 20000])  # above our limit; above PIL's own (a DecompressionBombError)
def test_a_label_file_claiming_huge_dimensions_is_refused_before_decoding(tmp_path: Path, side: int) -> None:
    import struct
    import zlib

    root = tmp_path / "cs"
    _cityscapes_tree(root)
    label = root / "gtFine" / "val" / "lindau" / "lindau_000002_000019_gtFine_labelIds.png"
    data = bytearray(label.read_bytes())  # the header claims side x side pixels; the file stays small
    data[16:24] = struct.pack(">II", side, side)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    label.write_bytes(bytes(data))
    with pytest.raises(DataError, match="label file") as err:
        prepare_cityscapes(root, tmp_path / "out", size=(8, 4))
    assert str(label) in str(err.value)
    assert f"{side} x {side} pixels, more than the limit" in str(err.value) or "400000000 pixels" in str(err.value)


def test_the_command_says_the_test_split_is_not_converted(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`srunit data cityscapes` on a download with leftImg8bit/test wrote train and val alone without a word."""
    from srunit.cli.main import main

    root = tmp_path / "cs"
    _cityscapes_tree(root)
    assert main(["data", "cityscapes", "--root", str(root), "--out", str(tmp_path / "out"), "--width", "8",
                 "--height", "4"]) == 0
    assert "not converted" not in capsys.readouterr().out
    (root / "leftImg8bit" / "test" / "berlin").mkdir(parents=True)
    assert main(["data", "cityscapes", "--root", str(root), "--out", str(tmp_path / "out2"), "--width", "8",
                 "--height", "4"]) == 0
    out = capsys.readouterr().out
    assert f"not converted: {root / 'leftImg8bit' / 'test'} (Cityscapes publishes no labels for its test split" in out
    assert not (tmp_path / "out2" / "testA").exists()
