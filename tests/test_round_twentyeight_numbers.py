"""Round twenty-eight (B): every number srunit prints, recomputed independently. Each test reproduced a defect
first; the expected values are computed here by hand or with numpy, never taken from srunit's output."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.data.labels import load_label_map
from srunit.errors import ConfigError
from srunit.eval.flips import flip_scores
from srunit.eval.scoring import score_segmentation
from srunit.synthscapes.summary import format_per_class_flips, summarize


def test_predicted_class_maps_keep_the_ids_of_256_classes_and_more(tmp_path: Path) -> None:
    """`eval seg --run` writes the segmenter's class maps (RUN/eval/predicted), from which the report marks flipped
    pixels. They were cast to uint8: with --classes 301, class 300 was written as 44, so a translation segmented as
    class 300 where the label is 44 showed as kept (the report said 25% flipped where all were)."""
    images, labels, predicted = tmp_path / "img", tmp_path / "lab", tmp_path / "pred"
    images.mkdir()
    labels.mkdir()
    label = np.full((4, 6), 44, np.uint16)
    label[0] = 0
    Image.fromarray(label).save(labels / "a.png")  # 16-bit ids
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(images / "a.png")
    ids = np.full((4, 6), 300)
    ids[1, :2] = -1, 5000  # outside [0, 301): the confusion matrix's "other" column

    result = score_segmentation(images, labels, lambda image: ids, 301, ignore_index=1000, predicted=predicted)

    back = load_label_map(predicted / "a.png")
    want = ids.copy()
    want[1, :2] = 301  # the id of no class of the labels
    assert np.array_equal(back, want)
    assert result.scores.pixel_accuracy == 0.0  # no pixel kept: every one flipped, as the map now shows
    assert np.count_nonzero(back != label) == label.size


def test_predicted_class_maps_of_fewer_than_256_classes_stay_8_bit(tmp_path: Path) -> None:
    images, labels, predicted = tmp_path / "img", tmp_path / "lab", tmp_path / "pred"
    images.mkdir()
    labels.mkdir()
    Image.fromarray(np.zeros((2, 3), np.uint8)).save(labels / "a.png")
    Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(images / "a.png")
    ids = np.array([[0, 1, 2], [3, 255, -4]])
    score_segmentation(images, labels, lambda image: ids, 4, predicted=predicted)
    with Image.open(predicted / "a.png") as written:
        assert written.mode == "L"
        assert np.asarray(written).tolist() == [[0, 1, 2], [3, 4, 4]]


def _counts() -> np.ndarray:
    """3 classes: class 0 keeps all 10 of its pixels, class 1 sends 2 of 8 to class 0 and 2 to "other", class 2
    sends 3 of 4 to class 1."""
    return np.array([[10, 0, 0, 0], [2, 4, 0, 2], [0, 3, 1, 0]])


def test_a_class_that_flipped_nowhere_names_no_destination() -> None:
    """A class none of whose pixels went to another class had a "top destination" all the same (the first other
    class, at a rate of 0) in the record, and the benchmark's table printed `0.0 → building`."""
    names = ["sky", "building", "road"]
    per_class = flip_scores(_counts(), names).to_dict()["per_class"]
    assert (per_class[0]["flip_rate"], per_class[0]["top_destination"], per_class[0]["top_destination_rate"]) == \
        (0.0, None, None)
    assert (per_class[1]["flip_rate"], per_class[1]["top_destination"], per_class[1]["top_destination_rate"]) == \
        (2 / 8, "sky", 2 / 8)
    assert (per_class[2]["top_destination"], per_class[2]["top_destination_rate"]) == ("building", 3 / 4)


def test_the_benchmarks_per_class_flip_table_names_no_destination_of_no_flip() -> None:
    names = ["sky", "building", "road"]
    flips = flip_scores(_counts(), names).to_dict()
    record = {"class_names": names, "seed": 0,
              "segmentation": {"pixel_accuracy": 0.5, "class_accuracy": 0.5, "mean_iou": 0.5, "flips": flips}}
    summary = summarize({("cut", "unmatched"): [("run", record)]}, record)
    row = summary["rows"][0]["per_class_flips"]
    assert row["sky"] == {"flip_rate": 0.0, "top_destination": None, "top_destination_rate": None}
    assert row["building"]["top_destination"] == "sky" and row["building"]["flip_rate"] == pytest.approx(0.25)
    table = format_per_class_flips(summary)
    assert table.splitlines()[-1] == "| cut | unmatched | 0.0 | 25.0 → sky | 75.0 → building |"


def test_bench_loader_refuses_a_batch_larger_than_the_data(tiny_config, tiny_data: Path) -> None:
    """`bench loader --train.batch_size 12` on 11 images: every epoch held no whole batch (the loader drops the
    last, short one), and the timing loop asked for the next epoch for ever. It is refused as training refuses it."""
    from srunit.engine.speed import measure_loader

    config = tiny_config("cut", "train.batch_size=12", data_root=tiny_data)

    def stuck(*_: object) -> None:
        raise TimeoutError("measure_loader did not return in 20 s")

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(20)
    try:
        with pytest.raises(ConfigError, match=r"train.batch_size 12 is larger than the dataset \(11 images\); "
                                              r"lower train.batch_size to 11 or less"):
            measure_loader(config, batches=2, warmup=0)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _quadrant_means():
    """A feature network for FID/KID: the mean of each colour channel in each quadrant of an image (12 features)."""
    import torch

    class QuadrantMeans(torch.nn.Module):
        num_features = 12

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.float() / 255
            h, w = x.shape[2] // 2, x.shape[3] // 2
            return torch.cat([q.mean((2, 3)) for q in (x[:, :, :h, :w], x[:, :, :h, w:], x[:, :, h:, :w],
                                                       x[:, :, h:, w:])], 1)

    return QuadrantMeans()


def _image_set(folder: Path, images: np.ndarray) -> np.ndarray:
    """Write ``images`` (N, 8, 8, 3) as PNGs into ``folder``; returns their quadrant means, computed here."""
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i}.png")
    x = images.astype(np.float64) / 255
    return np.concatenate([q.mean((1, 2)) for q in (x[:, :4, :4], x[:, :4, 4:], x[:, 4:, :4], x[:, 4:, 4:])], 1)


def test_fid_agrees_with_its_formula_and_kid_needs_two_images_a_subset(tmp_path: Path) -> None:
    """FID = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2). With --kid-subset-size 1, KID's unbiased estimate divides
    by m (m - 1) = 0: KID was nan, and NaN was written into the --json record."""
    from scipy import linalg

    from srunit.eval.fid import fid_kid

    rng = np.random.default_rng(0)
    f1 = _image_set(tmp_path / "real", np.clip(rng.normal(100, 60, (6, 8, 8, 3)), 0, 255).astype(np.uint8))
    f2 = _image_set(tmp_path / "fake", np.clip(rng.normal(150, 60, (5, 8, 8, 3)), 0, 255).astype(np.uint8))
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    fid = ((f1.mean(0) - f2.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * np.real(linalg.sqrtm(s1 @ s2)))

    scores = fid_kid(tmp_path / "real", tmp_path / "fake", feature=_quadrant_means(), kid_subsets=2,
                     kid_subset_size=2)
    assert scores.fid == pytest.approx(fid, rel=1e-4, abs=1e-6)
    assert np.isfinite(scores.kid_mean) and np.isfinite(scores.kid_std)
    with pytest.raises(ConfigError, match="--kid-subset-size must be an integer from 2 .*got 1; pass "
                                          "--kid-subset-size 2 or more"):
        fid_kid(tmp_path / "real", tmp_path / "fake", feature=_quadrant_means(), kid_subsets=3, kid_subset_size=1)


def test_kid_of_subsets_as_large_as_both_sets_is_their_unbiased_mmd(tmp_path: Path) -> None:
    """KID = the unbiased MMD^2 of the cubic kernel (x.y / d + 1)^3; every subset of 4 of 4 images is the whole set,
    so each draw gives the same value (std 0)."""
    from srunit.eval.fid import fid_kid

    rng = np.random.default_rng(1)
    x = _image_set(tmp_path / "real", rng.integers(0, 256, (4, 8, 8, 3)).astype(np.uint8))
    y = _image_set(tmp_path / "fake", rng.integers(0, 256, (4, 8, 8, 3)).astype(np.uint8))

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a @ b.T / a.shape[1] + 1) ** 3

    m = 4
    within = kernel(x, x).sum() - np.trace(kernel(x, x)) + kernel(y, y).sum() - np.trace(kernel(y, y))
    mmd = within / (m * (m - 1)) - 2 * kernel(x, y).sum() / m**2
    scores = fid_kid(tmp_path / "real", tmp_path / "fake", feature=_quadrant_means(), kid_subsets=3,
                     kid_subset_size=m)
    assert scores.kid_mean == pytest.approx(mmd, rel=1e-4, abs=1e-7)
    assert scores.kid_std < 1e-6  # float32 sums in another order


def _flip_record_run(name: str, n: int):  # noqa: ANN202 - a report Run holding one flip matrix
    from srunit.report.runs import Run

    matrix = np.concatenate([np.eye(n), np.zeros((n, 1))], 1).tolist()  # every class kept
    return Run(Path(name), name, "cut", {}, {"class_names": [f"c{i}" for i in range(n)],
                                             "segmentation": {"flips": {"matrix": matrix}}}, [])


@pytest.mark.slow  # draws the largest heat maps; tests/report's grids and heat maps run in the fast tier
def test_the_reports_flip_heat_maps_are_bounded_in_size() -> None:
    """The heat maps grew with the class count without bound: `srunit report` of a run scored with 1,600 classes
    (--classes takes up to 4,096) drew a 67,000-pixel square, took 18 GB and was killed by the kernel. Past a size
    they are left out with a note; the bars (of bounded width) stay."""
    from srunit.report.plots import MAX_HEAT_MAP_PIXELS, flips_section

    side = (0.42 * 201 + 1.6) * 100  # the heat map of 200 classes, in pixels (0.42 inch a class, 100 dpi)
    assert side * side > MAX_HEAT_MAP_PIXELS
    page = flips_section([_flip_record_run("wide", 200)])
    assert 'alt="per-class flip rate"' in page and 'alt="flip matrices"' not in page
    assert "The flip matrices of 200 classes (1 of them) are not drawn" in page
    assert 'alt="flip matrices"' in flips_section([_flip_record_run("narrow", 19)])


def test_a_run_scored_with_other_classes_is_named_where_the_flip_figures_leave_it_out() -> None:
    from srunit.report.plots import flips_section

    page = flips_section([_flip_record_run("three", 3), _flip_record_run("two", 2)])
    assert "Not shown here: two (scored with other classes than the 3 of three)" in page
