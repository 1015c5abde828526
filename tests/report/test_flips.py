"""srunit.report.flips: flip masks and their highlighting."""

from __future__ import annotations

import numpy as np
import pytest

from srunit.errors import DataError
from srunit.report import flip_mask, highlight_flips


def test_flip_mask_hand_case() -> None:
    labels = np.array([[0, 1, 255], [2, 2, 1]])
    pred = np.array([[0, 2, 7], [2, 0, 1]])
    expected = np.array([[False, True, False], [False, True, False]])
    np.testing.assert_array_equal(flip_mask(pred, labels), expected)
    # With another ignore index, 255 is an ordinary label and can flip.
    np.testing.assert_array_equal(flip_mask(pred, labels, ignore_index=2),
                                  np.array([[False, True, True], [False, False, False]]))
    with pytest.raises(DataError, match="x.png"):
        flip_mask(pred, labels[:, :2], source="x.png")


def test_highlight_changes_exactly_the_flipped_pixels() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 200, size=(9, 11, 3), dtype=np.uint8)
    mask = rng.random((9, 11)) < 0.3
    out = highlight_flips(image, mask)
    assert out.dtype == np.uint8 and out.shape == image.shape
    np.testing.assert_array_equal(out[~mask], image[~mask])
    assert (out[mask] != image[mask]).any(axis=1).all()
    assert (out[mask][:, 0] > image[mask][:, 0]).all()  # towards magenta: more red
    opaque = highlight_flips(image, mask, alpha=1.0)
    np.testing.assert_array_equal(opaque[mask], np.tile([255, 0, 255], (mask.sum(), 1)))
