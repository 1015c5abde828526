"""srunit.eval.hallucination: the hallucination rate from a confusion matrix, recomputed by counting pixels, and
its place in evaluation records and their flat scores."""

from __future__ import annotations

import numpy as np
import pytest

from srunit.errors import ConfigError, DataError
from srunit.eval.hallucination import hallucination_scores
from srunit.eval.records import HALLUCINATION_KEY, flat_scores
from srunit.eval.segmentation import ConfusionMatrix

NAMES = ["road", "car", "sky", "tree"]


def _counts(labels: np.ndarray, pred: np.ndarray, ignore: int = 255) -> np.ndarray:
    cm = ConfusionMatrix(len(NAMES), ignore)
    cm.update(pred, labels)
    return cm.counts


def test_rate_counts_pixels_painted_as_the_class_where_the_source_holds_another() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=(2, 40, 40)).astype(np.uint8)
    labels[0, :3] = 255  # ignored pixels count nowhere
    pred = rng.integers(0, 5, size=(2, 40, 40)).astype(np.uint8)  # 4: outside the classes ("other")
    scores = hallucination_scores(_counts(labels, pred), NAMES, [1])
    labelled = labels != 255
    painted = labelled & (pred == 1) & (labels != 1)  # a car kept as a car is no hallucination
    assert scores.pixels == painted.sum() and scores.labelled == labelled.sum()
    assert scores.rate == pytest.approx(painted.sum() / labelled.sum())
    assert scores.per_class == {"car": pytest.approx(scores.rate)}
    for c, name in enumerate(NAMES):
        share = (painted & (labels == c)).sum() / painted.sum()
        assert scores.sources.get(name, 0.0) == pytest.approx(share)
    assert "car" not in scores.sources  # never its own source
    # Two classes: their rates add up, each counted where the source holds another class.
    both = hallucination_scores(_counts(labels, pred), NAMES, [1, 3])
    tree = labelled & (pred == 3) & (labels != 3)
    assert both.per_class["tree"] == pytest.approx(tree.sum() / labelled.sum())
    assert both.rate == pytest.approx((painted.sum() + tree.sum()) / labelled.sum())
    assert both.to_dict()[HALLUCINATION_KEY] == both.rate and both.to_dict()["classes"] == ["car", "tree"]


def test_sources_without_the_class_make_it_the_share_of_pixels_segmented_as_it() -> None:
    labels = np.zeros((10, 10), np.uint8)  # all road: no car in the source
    pred = np.zeros((10, 10), np.uint8)
    pred[2:4, 5:10] = 1  # 10 car pixels
    scores = hallucination_scores(_counts(labels, pred), NAMES, [1])
    assert scores.rate == 0.1 and scores.sources == {"road": 1.0}
    none = hallucination_scores(_counts(labels, np.zeros_like(pred)), NAMES, [1])
    assert none.rate == 0.0 and none.sources == {} and none.pixels == 0


def test_bad_input_is_refused() -> None:
    counts = _counts(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8))
    with pytest.raises(ConfigError, match="no hallucinated class given"):
        hallucination_scores(counts, NAMES, [])
    with pytest.raises(ConfigError, match="hallucinated class id 7 is outside 0..3"):
        hallucination_scores(counts, NAMES, [7])
    with pytest.raises(DataError, match=r"need \(3, 4\) counts"):
        hallucination_scores(counts, NAMES[:3], [1])
    with pytest.raises(DataError, match="no labelled pixels"):
        hallucination_scores(np.zeros((4, 5)), NAMES, [1])


def test_flat_scores_read_the_rate() -> None:
    record = {"segmentation": {"mean_iou": 0.5, "hallucination": {HALLUCINATION_KEY: 0.02, "classes": ["car"]}}}
    assert flat_scores(record) == {"mean_iou": 0.5, HALLUCINATION_KEY: 0.02}
    assert HALLUCINATION_KEY not in flat_scores({"segmentation": {"mean_iou": 0.5}})
