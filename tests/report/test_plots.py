"""srunit.report.plots: what the loss panels draw for runs and for benchmark rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from srunit.report.plots import loss_curves, loss_section, mean_curve
from srunit.report.runs import Bench, BenchRow, Run


def _run(name: str, metrics: dict[int, dict[str, float]]) -> Run:
    return Run(Path(name), name, "cut", metrics, None)


def test_a_benchmark_row_is_one_curve_the_mean_of_its_seeds_with_their_range() -> None:
    seeds = [_run("cut-seed0", {50: {"G": 3.0, "D": 0.5}, 100: {"G": 2.0}}),
             _run("cut-seed1", {50: {"G": 5.0}, 100: {"G": 1.0}, 150: {"G": 0.5}})]
    identity = _run("identity", {})
    rows = [BenchRow("cut", "unmatched", 2, {}, {}, seeds), BenchRow("label maps, untranslated", "-", 1, {}, {},
                                                                     [identity])]
    bench = Bench(Path("b"), {}, rows, None, None)
    alone = _run("mine", {10: {"G": 7.0}})
    curves = loss_curves([bench, alone])
    assert [(label, [r.label for r in runs]) for label, runs in curves] == [
        ("cut / unmatched", ["cut-seed0", "cut-seed1"]), ("mine", ["mine"])]  # no metrics, no curve
    steps, mean, low, high = mean_curve(seeds, "G")
    assert steps == [50, 100]  # the steps every seed logged
    np.testing.assert_allclose(mean, [4.0, 1.5])
    np.testing.assert_allclose(low, [3.0, 1.0])
    np.testing.assert_allclose(high, [5.0, 2.0])
    assert mean_curve(seeds, "D")[0] == []  # not logged by every seed: no common step
    page = loss_section([bench, alone])
    assert page.startswith("<h2>Training losses</h2>") and "the mean over its seeds" in page and "<img" in page
    assert "mean over its seeds" not in loss_section([alone]) and loss_section([]) == ""


def test_an_iou_of_zero_is_drawn_and_labelled_unlike_an_absent_class() -> None:
    """A bar of height 0 looked like the missing bar of a class absent from the labels."""
    from srunit.report.plots import ZERO_STUB, iou_figure

    per_class = [{"id": 0, "name": "road", "iou": 0.0}, {"id": 1, "name": "car", "iou": None},
                 {"id": 2, "name": "sky", "iou": 0.5}]
    run = Run(Path("r"), "r", "cut", {}, {"segmentation": {"per_class": per_class}}, [])
    ax = iou_figure([run]).axes[0]
    assert [t.get_text() for t in ax.texts] == ["0.0"]  # the zero only, not the absent class
    heights = sorted(round(p.get_height(), 6) for p in ax.patches if not np.isnan(p.get_height()))
    assert heights == [0.0, ZERO_STUB, 50.0]  # the bars 0 and 50, and the visible stub of the 0


def _flip_run(name: str, matrix: list[list[float | None]]) -> Run:
    names = ["sky", "building", "vegetation"]
    return Run(Path(name), name, "cut", {}, {"class_names": names,
                                             "segmentation": {"flips": {"matrix": matrix}}}, [])


def test_the_flip_section_draws_bars_of_the_flipped_share_and_one_heat_map_per_row() -> None:
    from srunit.report.plots import _mean_flip_matrix, flips_section

    a = _flip_run("a", [[0.6, 0.0, 0.3, 0.1], [0.1, 0.4, 0.5, 0.0], [None, None, None, None]])
    b = _flip_run("b", [[0.8, 0.0, 0.2, 0.0], [0.1, 0.6, 0.3, 0.0], [0.0, 0.0, 1.0, 0.0]])
    mean = _mean_flip_matrix([a, b])
    np.testing.assert_allclose(mean[0], [0.7, 0.0, 0.25, 0.05])
    np.testing.assert_allclose(mean[2], [0.0, 0.0, 1.0, 0.0])  # a class one run lacks: the other run's row
    bench = Bench(Path("b"), {}, [BenchRow("cut", "unmatched", 2, {}, {}, [a, b])], None, None)
    page = flips_section([bench, _flip_run("alone", [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]])])
    assert page.startswith("<h2>Semantic flips</h2>") and page.count("<img") == 2
    assert 'alt="per-class flip rate"' in page and 'alt="flip matrices"' in page
    assert flips_section([_run("no-scores", {})]) == ""


def test_a_flip_matrix_of_the_wrong_shape_is_not_drawn() -> None:
    from srunit.report.plots import _flip_matrix

    assert _flip_matrix({"segmentation": {"flips": {"matrix": [[0.5, 0.5, 0.0]]}}}) is None  # (1, 3): not (N, N + 1)
    assert _flip_matrix({"segmentation": {"flips": {"matrix": "x"}}}) is None
    assert _flip_matrix(None) is None
