"""srunit.eval.segmentation: the confusion matrix and the scores computed from it, against hand examples."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from srunit.errors import ConfigError, DataError
from srunit.eval import ConfusionMatrix, segmentation_scores
from srunit.eval.segmentation import class_name_list


def test_confusion_matrix_hand_example() -> None:
    # 3 classes, ignore 255, class 2 never in the labels, one prediction (7) out of range.
    # label: 0 0 0 0 | 1 1 1 | 255 255
    # pred : 0 0 1 2 | 1 1 7 | 2   0
    # Kept pixels: 7.  Class 0: G=4, T=2.  Class 1: G=3, T=2.
    # Predicted counts over kept pixels: P0=2, P1=3 (one from class 0), P2=1, other=1.
    # pixAcc = (2+2)/7 = 4/7
    # acc0 = 2/4 = 1/2, acc1 = 2/3  -> clsAcc = (1/2 + 2/3)/2 = 7/12
    # IoU0 = 2/(4+2-2) = 1/2, IoU1 = 2/(3+3-2) = 1/2 -> mIoU = 1/2
    cm = ConfusionMatrix(3, ignore_index=255)
    cm.update(np.array([[0, 0], [1, 2]]), np.array([[0, 0], [0, 0]], dtype=np.uint8))  # numpy, (2, 2)
    cm.update(torch.tensor([1, 1, 7, 2, 0]), torch.tensor([1, 1, 1, 255, 255]))  # torch, (5,)
    assert cm.matrix.tolist() == [[2, 1, 1], [0, 2, 0], [0, 0, 0]]
    assert cm.counts[:, 3].tolist() == [0, 1, 0]
    s = segmentation_scores(cm)
    assert s.pixel_accuracy == pytest.approx(4 / 7)
    assert s.class_accuracy == pytest.approx(7 / 12)
    assert s.mean_iou == pytest.approx(1 / 2)
    assert s.per_class_accuracy[:2] == pytest.approx([1 / 2, 2 / 3])
    assert s.per_class_iou[:2] == pytest.approx([1 / 2, 1 / 2])
    assert math.isnan(s.per_class_accuracy[2]) and math.isnan(s.per_class_iou[2])
    assert s.absent_classes == [2]
    assert s.num_pixels == 7


def test_confusion_matrix_bad_input() -> None:
    cm = ConfusionMatrix(3)
    with pytest.raises(DataError, match=r"labels/x\.png\) holds value\(s\) 3, 9 outside \[0, 3\)"):
        cm.update(np.zeros((1, 4), int), np.array([[0, 3, 9, 255]]), source="labels/x.png")
    with pytest.raises(DataError, match="shape"):
        cm.update(np.zeros((2, 2), int), np.zeros((2, 3), int))
    with pytest.raises(DataError, match="dtype float"):
        cm.update(np.zeros(2), np.zeros(2, int))
    with pytest.raises(ConfigError, match="--classes") as e:
        ConfusionMatrix(0)
    assert str(e.value).startswith("--classes must be an integer from 1 to 4,096, got 0; ")
    with pytest.raises(ConfigError, match=re.escape("2 class names were given but --classes is 3")):
        segmentation_scores(ConfusionMatrix(3), ["a", "b"])
    empty = ConfusionMatrix(3)
    empty.update(np.zeros(2, int), np.full(2, 255))
    with pytest.raises(DataError, match="no labelled pixels"):
        segmentation_scores(empty)


def test_class_name_list() -> None:
    assert class_name_list(None, 3) == ["class 0", "class 1", "class 2"]
    assert class_name_list(("sky", "road"), 2) == ["sky", "road"]
    with pytest.raises(ConfigError) as e:
        class_name_list(["sky", "road"], 19)
    assert str(e.value) == ("2 class names were given but --classes is 19; pass --classes 2, or no names "
                            "(--class-names none)")


def test_scores_to_dict_uses_none_for_absent_classes() -> None:
    cm = ConfusionMatrix(2)
    cm.update(np.array([0, 0, 1]), np.array([0, 0, 0]))
    record = segmentation_scores(cm, ["a", "b"]).to_dict()
    assert record["pixel_accuracy"] == pytest.approx(2 / 3) and record["absent_classes"] == [1]
    assert record["per_class"] == [
        {"id": 0, "name": "a", "accuracy": pytest.approx(2 / 3), "iou": pytest.approx(2 / 3)},
        {"id": 1, "name": "b", "accuracy": None, "iou": None},
    ]
    assert record["num_pixels"] == 3
