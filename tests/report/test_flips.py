"""srunit.report.flips: flip masks and their highlighting."""

from __future__ import annotations

import numpy as np
import pytest

from srunit.errors import DataError
from srunit.report import flip_mask, highlight_flips
from srunit.report.flips import FLIP_COLOUR


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
    assert (out[mask][:, 1] > image[mask][:, 1]).all()  # towards cyan: more green
    opaque = highlight_flips(image, mask, alpha=1.0)
    np.testing.assert_array_equal(opaque[mask], np.tile(FLIP_COLOUR, (mask.sum(), 1)))


def test_the_flip_colour_is_in_no_label_palette() -> None:
    """Magenta was Cityscapes' sidewalk: a flipped pixel read as a sidewalk."""
    from srunit.data.labels import PALETTES
    from srunit.synthscapes.scenes import PALETTE

    colours = [*(c for palette in PALETTES.values() for c in palette), *map(tuple, PALETTE.tolist())]
    assert tuple(FLIP_COLOUR) not in {tuple(int(v) for v in c) for c in colours}
    nearest = min(float(np.linalg.norm(np.subtract(FLIP_COLOUR, c, dtype=float))) for c in colours)
    assert nearest > 100  # not merely off by one: no palette colour comes close


def test_grid_columns_and_images_say_what_they_show(tmp_path, report_dataset, make_report_run) -> None:
    """The columns of the image grid had no labels: which is the input, the translation, the flips, the target."""
    from srunit.report.flips import grids_section
    from srunit.report.runs import load_run

    run = load_run(make_report_run(tmp_path / "run", data=report_dataset, label="mine"))
    html = grids_section([run], 3)
    for header in ("<th>input (source)</th>", "<th>mine: translation / flips</th>", "<th>target (ground truth)</th>"):
        assert header in html
    for caption in ("input", "translation", "flips", "target"):
        assert html.count(f'<div class="caption">{caption}</div>') == 3  # under each of the 3 rows' images


def test_small_cells_are_enlarged_but_a_thin_strip_is_not_blown_up() -> None:
    """Tiny benchmark images are enlarged to 128 px wide; a 1 x 100,000 strip was enlarged 128 times on each side,
    1.6 G pixels (4.9 GB) for one cell of the report."""
    from srunit.report.flips import MAX_UPSCALED_PIXELS, upscale_factor

    assert upscale_factor(32, 32) == 4 and upscale_factor(64, 48) == 2 and upscale_factor(128, 128) == 1
    assert upscale_factor(1, 100_000) == 1 and upscale_factor(5000, 1) == 1
    assert upscale_factor(1, 1000) == 16  # 16 x 16,000 = 256,000 pixels, the most under 512 x 512
    for w, h in ((1, 1), (1, 1000), (3, 7000), (100, 2), (127, 2064)):
        f = upscale_factor(w, h)
        assert f >= 1 and (f == 1 or w * h * f * f <= MAX_UPSCALED_PIXELS)
