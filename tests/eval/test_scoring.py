"""srunit.eval.scoring: segmenting a folder and scoring it against label maps, by hand."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.errors import ConfigError, DataError
from srunit.eval import score_segmentation

RED, GREEN, BLUE, DARK_RED = (255, 0, 0), (0, 200, 0), (0, 0, 90), (60, 10, 20)


class StrongestChannel:
    """Segments each pixel as the index of its strongest channel and records what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, ...]] = []

    def __call__(self, image: np.ndarray) -> np.ndarray:
        self.calls.append(image.shape)
        return image.argmax(axis=2)


def _folders(root: Path) -> tuple[Path, Path]:
    images, labels = root / "images", root / "labels"
    (images / "sub").mkdir(parents=True)
    (labels / "sub").mkdir(parents=True)
    Image.fromarray(np.array([[RED, GREEN, BLUE, DARK_RED]], np.uint8)).save(images / "x.png")  # -> 0 1 2 0
    Image.fromarray(np.array([[0, 1, 1, 255]], np.uint8), mode="L").save(labels / "x.png")
    Image.fromarray(np.array([[GREEN, GREEN, BLUE]], np.uint8)).save(images / "sub" / "y.jpg.png")  # -> 1 1 2
    Image.fromarray(np.array([[1, 0, 2]], np.uint8), mode="L").save(labels / "sub" / "y.jpg.bmp")
    return images, labels


def test_score_segmentation_against_a_hand_computed_confusion_matrix(tmp_path: Path) -> None:
    images, labels = _folders(tmp_path)
    segment = StrongestChannel()
    result = score_segmentation(images, labels, segment, 3, class_names=["a", "b", "c"],
                                predicted=tmp_path / "predicted")
    assert sorted(segment.calls) == [(1, 3, 3), (1, 4, 3)]
    # label -> prediction over the kept pixels (255 ignored):
    #   x: 0->0, 1->1, 1->2      y: 1->1, 0->1, 2->2
    expected = [[1, 1, 0],
                [0, 2, 1],
                [0, 0, 1]]
    assert result.confusion.matrix.tolist() == expected and result.num_images == 2
    s = result.scores
    assert s.pixel_accuracy == pytest.approx(4 / 6)
    assert s.class_accuracy == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert s.mean_iou == pytest.approx((1 / 2 + 2 / 4 + 1 / 2) / 3)  # IoU_c = T / (G + P - T)
    assert s.class_names == ["a", "b", "c"] and s.num_pixels == 6
    record = result.to_dict()
    assert record["confusion_matrix"] == expected and record["other_predictions"] == [0, 0, 0]
    assert (record["num_images"], record["num_classes"], record["ignore_index"]) == (2, 3, 255)
    assert record["mean_iou"] == pytest.approx(1 / 2) and record["per_class"][2]["name"] == "c"
    # The predicted class maps, named by the label maps' stems, as 8-bit ids.
    assert np.asarray(Image.open(tmp_path / "predicted" / "x.png")).tolist() == [[0, 1, 2, 0]]
    assert np.asarray(Image.open(tmp_path / "predicted" / "sub" / "y.jpg.png")).tolist() == [[1, 1, 2]]


def test_ignore_index_and_no_predicted_maps_unless_asked(tmp_path: Path) -> None:
    images, labels = _folders(tmp_path)
    result = score_segmentation(images, labels, StrongestChannel(), 3)
    assert result.confusion.matrix.sum() == 6 and not (tmp_path / "predicted").exists()
    # With another ignore index, 255 is an out-of-range label: an error naming the image and its label map.
    with pytest.raises(DataError, match=re.escape(f"label map ({images / 'x.png'} / {labels / 'x.png'}) holds "
                                                  f"value(s) 255 outside [0, 3) that are not the ignore index 1")):
        score_segmentation(images, labels, StrongestChannel(), 3, ignore_index=1)


def test_wrong_number_of_class_names_fails_before_any_image_is_read(tmp_path: Path) -> None:
    images, labels = _folders(tmp_path)
    segment = StrongestChannel()
    message = re.escape("2 class names were given but --classes is 3; pass --classes 2")
    with pytest.raises(ConfigError, match=message):
        score_segmentation(images, labels, segment, 3, class_names=["a", "b"])
    assert segment.calls == []
    # Not even the folders are looked at: missing ones give the same configuration error.
    with pytest.raises(ConfigError, match=message):
        score_segmentation(tmp_path / "none", tmp_path / "nothing", segment, 3, class_names=["a", "b"])
    with pytest.raises(ConfigError, match=re.escape("--classes must be an integer from 1 to 4,096, got 0")):
        score_segmentation(images, labels, segment, 0)
    assert segment.calls == []


def test_pairing_and_size_errors_name_the_files(tmp_path: Path) -> None:
    images, labels = _folders(tmp_path)
    Image.new("RGB", (4, 1)).save(images / "z.png")
    with pytest.raises(DataError, match=re.escape(f"1 image file(s) have no label map partner with the same name stem "
                                                  f"in {labels}: {images / 'z.png'}")):
        score_segmentation(images, labels, StrongestChannel(), 3)
    Image.fromarray(np.zeros((1, 3), np.uint8), mode="L").save(labels / "z.png")
    with pytest.raises(DataError, match=re.escape(f"image {images / 'z.png'} is 4x1 but label map {labels / 'z.png'} "
                                                  f"is 3x1")):
        score_segmentation(images, labels, StrongestChannel(), 3)
