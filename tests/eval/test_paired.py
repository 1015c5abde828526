"""srunit.eval.paired: Dist and Acc(delta) against ground-truth targets, by hand."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.errors import ConfigError, DataError
from srunit.eval import check_deltas, paired_scores, parse_deltas, pixel_distance_and_accuracy


def test_pixel_distance_and_accuracy_hand_values() -> None:
    pred = np.array([[[0, 0, 0], [100, 100, 100]], [[0, 0, 0], [10, 10, 10]]], dtype=np.uint8)
    target = np.array([[[3, 4, 0], [130, 100, 100]], [[255, 0, 0], [30, 50, 50]]], dtype=np.uint8)
    # distances: 5 (3-4-5), 30, 255 (0-255 must not wrap in uint8), sqrt(20^2+40^2+40^2) = 60
    # max channel diffs: 4, 30, 255, 40 -> <30: 1 pixel, <50: 3 pixels
    total, count, hits = pixel_distance_and_accuracy(pred, target, (30, 50))
    assert total == pytest.approx(5 + 30 + 255 + 60)
    assert count == 4
    assert hits == {30: 1, 50: 3}
    with pytest.raises(DataError):
        pixel_distance_and_accuracy(pred, target[:1], (30,))


def test_paired_scores_folders(paired_folders: tuple[Path, Path]) -> None:
    pred, target = paired_folders
    s = paired_scores(pred, target, (30, 50))
    # 4 pixels at distance 5 and 2 at 40: (20 + 80) / 6; Acc(30) = 4/6, Acc(50) = 6/6
    assert s.dist == pytest.approx(100 / 6)
    assert s.acc[30] == pytest.approx(4 / 6) and s.acc[50] == pytest.approx(1.0)
    assert (s.num_images, s.num_pixels) == (2, 6)


def test_paired_scores_errors(paired_folders: tuple[Path, Path]) -> None:
    pred, target = paired_folders
    Image.new("RGB", (2, 2)).save(pred / "c.png")
    with pytest.raises(DataError, match=r"prediction file.*no target partner.*c\.png"):
        paired_scores(pred, target)
    (pred / "c.png").unlink()
    Image.new("RGB", (2, 2)).save(target / "d.png")
    with pytest.raises(DataError, match=r"target file.*no prediction partner.*d\.png"):
        paired_scores(pred, target)
    (target / "d.png").unlink()
    Image.new("RGB", (3, 2)).save(target / "a.png")
    with pytest.raises(DataError, match=r"pred/a\.png is 2x2 but target .*target/a\.png is 3x2"):
        paired_scores(pred, target)
    with pytest.raises(ConfigError, match="--delta"):
        paired_scores(pred, target, (0,))


def test_parse_and_check_deltas() -> None:
    assert parse_deltas("30,50") == (30, 50)
    assert parse_deltas(" 30, 50 ,") == (30, 50)
    assert check_deltas([1, 256]) == (1, 256)
    with pytest.raises(ConfigError, match=re.escape("--delta must be comma-separated integers, got '30,x'")):
        parse_deltas("30,x")
    for text in ("", "0", "257", "30,-1"):
        with pytest.raises(ConfigError, match=r"--delta must be a comma-separated list of integers in 1\.\.256"):
            parse_deltas(text)
    with pytest.raises(ConfigError, match="--delta"):
        check_deltas([30.0])  # type: ignore[list-item]


def test_paired_scores_to_dict_has_string_acc_keys(paired_folders: tuple[Path, Path]) -> None:
    record = paired_scores(*paired_folders, (30,)).to_dict()
    assert record == {"dist": pytest.approx(100 / 6), "acc": {"30": pytest.approx(4 / 6)}, "num_images": 2,
                      "num_pixels": 6}
