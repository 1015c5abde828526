"""srunit.datasets.pix2pix: cutting side-by-side A|B images into two folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.datasets import split_side_by_side
from srunit.errors import ConfigError, DataError


def test_split_side_by_side(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "train").mkdir(parents=True)
    arr = np.zeros((2, 4, 3), np.uint8)
    arr[:, :2] = (255, 0, 0)
    arr[:, 2:] = (0, 0, 255)
    Image.fromarray(arr).save(src / "train" / "1.jpg", quality=100)
    Image.fromarray(arr).save(src / "2.png")
    assert split_side_by_side(src, tmp_path / "out") == 2
    a = np.asarray(Image.open(tmp_path / "out" / "A" / "2.png"))
    b = np.asarray(Image.open(tmp_path / "out" / "B" / "2.png"))
    assert a.shape == (2, 2, 3) and (a == (255, 0, 0)).all() and (b == (0, 0, 255)).all()
    assert (tmp_path / "out" / "B" / "train" / "1.png").is_file()

    Image.new("RGB", (5, 2)).save(src / "odd.png")
    with pytest.raises(DataError, match="odd.png.*5 pixels wide"):
        split_side_by_side(src, tmp_path / "out_odd")
    assert not (tmp_path / "out_odd").exists()  # checked before writing anything
    with pytest.raises(DataError, match="not an empty folder"):
        split_side_by_side(src, tmp_path / "out")


def test_split_side_by_side_refuses_equal_or_empty_names(tmp_path: Path) -> None:
    for a, b in (("A", "A"), ("", "B")):
        with pytest.raises(ConfigError, match="must differ and be non-empty"):
            split_side_by_side(tmp_path, tmp_path / "out", a_name=a, b_name=b)
