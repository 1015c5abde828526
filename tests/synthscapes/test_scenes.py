"""srunit.synthscapes.scenes: layouts, their label colour maps and photo renderings."""

from __future__ import annotations

import numpy as np
import pytest

from srunit.errors import DataError
from srunit.synthscapes.scenes import (
    CLASS_NAMES,
    IGNORE_LABEL,
    PALETTE,
    SKY,
    VEGETATION,
    class_fractions,
    colors_to_labels,
    render_labels,
    render_photo,
    sample_layout,
)


def test_layouts_classes_and_vegetation_bias() -> None:
    rng = np.random.default_rng(0)
    a = [sample_layout(rng, 48, 0.15) for _ in range(30)]
    rng_b = np.random.default_rng(1)
    b = [sample_layout(rng_b, 48, 0.8) for _ in range(30)]
    present = set(np.unique(np.concatenate([x.ravel() for x in a[:6]])).tolist())
    assert len(present) >= 6
    assert {0, 1, 2, 3, 4, 5} <= set(np.unique(np.concatenate([x.ravel() for x in a])))
    assert a[0].dtype == np.uint8 and a[0].shape == (48, 48) and a[0].max() < len(CLASS_NAMES)

    frac_a = np.mean([class_fractions(x) for x in a], axis=0)
    frac_b = np.mean([class_fractions(x) for x in b], axis=0)
    assert frac_b[VEGETATION] > frac_a[VEGETATION] + 0.1  # a higher bias: more vegetation, less sky
    assert frac_b[SKY] < frac_a[SKY]


def test_layouts_and_renderings_are_deterministic() -> None:
    layout = sample_layout(np.random.default_rng(7), (32, 40), 0.5)
    assert layout.shape == (32, 40)
    assert np.array_equal(layout, sample_layout(np.random.default_rng(7), (32, 40), 0.5))
    photo = render_photo(layout, np.random.default_rng(1))
    assert photo.shape == (32, 40, 3) and photo.dtype == np.uint8
    assert np.array_equal(photo, render_photo(layout, np.random.default_rng(1)))
    assert not np.array_equal(photo, render_photo(layout, np.random.default_rng(2)))  # the noise is drawn


def test_label_colours_round_trip() -> None:
    layout = sample_layout(np.random.default_rng(0), 48, 0.15)
    colours = render_labels(layout)
    assert colours.shape == (48, 48, 3) and colours.dtype == np.uint8
    assert np.array_equal(colours[layout == SKY][0], [70, 130, 180])  # Cityscapes' sky colour
    assert np.array_equal(colors_to_labels(colours), layout)
    every = np.arange(len(CLASS_NAMES), dtype=np.uint8)[None, :]
    assert np.array_equal(render_labels(every)[0], PALETTE)
    assert np.array_equal(colors_to_labels(PALETTE[None]), every)
    off = colours.copy()
    off[0, 0] = (1, 2, 3)  # not a palette colour
    ids = colors_to_labels(off)
    assert ids[0, 0] == IGNORE_LABEL == 255 and np.array_equal(ids.ravel()[1:], layout.ravel()[1:])


def test_class_fractions_and_bad_inputs() -> None:
    labels = np.array([[0, 0, 2], [2, 2, 7]], np.uint8)
    np.testing.assert_allclose(class_fractions(labels), [2 / 6, 0, 3 / 6, 0, 0, 0, 0, 1 / 6])
    with pytest.raises(ValueError, match=r"class ids in \[0, 8\)"):
        render_labels(np.array([[0, 8]], np.uint8))
    with pytest.raises(ValueError, match=r"\(H, W\) integer array"):
        class_fractions(np.zeros((2, 2), np.float32))
    with pytest.raises(DataError, match="at least 8x8 pixels, got 4x16"):
        sample_layout(np.random.default_rng(0), (4, 16))
    assert not PALETTE.flags.writeable
