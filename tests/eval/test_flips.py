"""Flip rates (srunit.eval.flips) against counts worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from srunit.errors import ConfigError, DataError
from srunit.eval.flips import class_ids, directed_flip_classes, flip_scores
from srunit.eval.records import flat_scores
from srunit.eval.scoring import score_segmentation
from srunit.eval.segmentation import ConfusionMatrix

NAMES = ["sky", "building", "vegetation"]


def _counts() -> np.ndarray:
    # rows: source class; columns: sky, building, vegetation, other (not rendered)
    return np.array([[60, 0, 30, 10],    # sky: 30 -> vegetation, 10 not rendered
                     [5, 20, 25, 0],     # building: 5 -> sky, 25 -> vegetation
                     [0, 0, 100, 0]])    # vegetation kept


def test_rates_match_hand_counts() -> None:
    f = flip_scores(_counts(), NAMES, flip_from=(0, 1), flip_to=2)
    np.testing.assert_allclose(f.per_class, [30 / 100, 30 / 50, 0.0])
    np.testing.assert_allclose(f.unrendered, [10 / 100, 0.0, 0.0])
    assert f.flip_rate == pytest.approx(60 / 250)  # 30 + 5 + 25 flipped of 250 labelled pixels
    assert f.unrendered_rate == pytest.approx(10 / 250)
    assert f.directed_flip_rate == pytest.approx(55 / 150)  # (30 + 25) of the 150 sky and building pixels
    assert f.matrix[1].tolist() == pytest.approx([0.1, 0.4, 0.5, 0.0])
    d = f.to_dict()
    assert d["per_class"][0]["top_destination"] == "vegetation" and d["per_class"][1]["top_destination_rate"] == 0.5
    assert d["flip_from"] == ["sky", "building"] and d["flip_to"] == "vegetation"


def test_an_absent_class_has_no_rate_and_no_destination() -> None:
    counts = _counts()
    counts[2] = 0
    d = flip_scores(counts, NAMES).to_dict()
    assert d["per_class"][2]["flip_rate"] is None and d["per_class"][2]["top_destination"] is None
    assert d["matrix"][2] == [None] * 4 and "directed_flip_rate" not in d


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(DataError, match=r"\(3, 4\) counts"):
        flip_scores(np.zeros((3, 3)), NAMES)
    with pytest.raises(DataError, match="no labelled pixels"):
        flip_scores(np.zeros((3, 4)), NAMES)
    with pytest.raises(ConfigError, match="both"):
        flip_scores(_counts(), NAMES, flip_from=(0,))
    with pytest.raises(ConfigError, match="into itself"):
        flip_scores(_counts(), NAMES, flip_from=(0, 2), flip_to=2)
    with pytest.raises(ConfigError, match="outside 0..2"):
        flip_scores(_counts(), NAMES, flip_from=(5,), flip_to=2)


def test_directed_classes_follow_the_share_rule() -> None:
    a = {"sky": 0.24, "building": 0.27, "vegetation": 0.18, "road": 0.31}
    b = {"sky": 0.12, "building": 0.09, "vegetation": 0.50, "road": 0.29}
    assert directed_flip_classes(a, b, NAMES + ["road"]) == ((0, 1), 2)
    assert directed_flip_classes(a, a, NAMES + ["road"]) == ((), None)  # matched statistics: nothing directed


def test_class_ids_take_names_or_ids() -> None:
    assert class_ids("sky, 2", NAMES, "--flip-from") == (0, 2)
    with pytest.raises(ConfigError, match="--flip-to: 'tree' is not a class"):
        class_ids("tree", NAMES, "--flip-to")


def test_a_folder_scored_end_to_end_gives_the_flips(tmp_path) -> None:
    from PIL import Image

    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    label = np.zeros((4, 4), np.uint8)
    label[2:] = 1  # top half sky, bottom half building
    Image.fromarray(label).save(tmp_path / "lab" / "a.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "img" / "a.png")
    # a segmenter that calls every pixel vegetation except the first row (sky)
    def segment(image: np.ndarray) -> np.ndarray:
        out = np.full(image.shape[:2], 2)
        out[0] = 0
        return out

    result = score_segmentation(tmp_path / "img", tmp_path / "lab", segment, 3, class_names=NAMES)
    seg = result.to_dict((0, 1), 2)
    flat = flat_scores({"segmentation": seg})
    assert flat["directed_flip_rate"] == pytest.approx(12 / 16)
    assert flat["flip_rate"] == pytest.approx(12 / 16)
    assert seg["flips"]["per_class"][0]["flip_rate"] == pytest.approx(0.5)
    assert isinstance(result.confusion, ConfusionMatrix)
