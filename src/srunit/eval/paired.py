"""Paired pixel scores when ground-truth targets exist: mean pixel distance and Acc(delta).

Paper Sec. 5.1.3-5.1.4: for each pixel, the L2 distance between predicted and target 0-255 RGB
values (averaged over all pixels of all images, "Dist"), and Acc(delta), the share of pixels whose
largest per-channel absolute difference is below delta.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srunit._progress import progress_bar
from srunit.checks import check_flag, check_path
from srunit.data.files import nested_folders, pair_by_stem, scan_images
from srunit.data.images import load_rgb, warn_of_several_frames
from srunit.errors import ConfigError, DataError
from srunit.eval.records import MAX_DELTA

__all__ = ["PairedScores", "check_deltas", "check_pred_and_target", "parse_deltas", "paired_scores",
           "pixel_distance_and_accuracy"]


@dataclass
class PairedScores:
    """``dist``: mean per-pixel RGB L2 distance in 0-255 units (0 .. 255*sqrt(3));
    ``acc``: delta -> fraction of pixels in [0, 1] with max channel difference < delta."""

    dist: float
    acc: dict[int, float]
    num_images: int
    num_pixels: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the Acc keys become strings ("30")."""
        return {"dist": self.dist, "acc": {str(d): a for d, a in self.acc.items()},
                "num_images": self.num_images, "num_pixels": self.num_pixels}


def check_deltas(deltas: Sequence[int]) -> tuple[int, ...]:
    """Validate Acc thresholds: a non-empty list of distinct integers in [1, MAX_DELTA] (256).

    Raises:
        TypeError: ``deltas`` is a string (`parse_deltas` reads one) or not iterable.
        ConfigError: naming the option (--delta), the value and the fix.
    """
    if isinstance(deltas, (str, bytes)) or not isinstance(deltas, Iterable):  # '30,50' was read as '3', '0', ','...
        fix = "; parse_deltas reads the text of --delta" if isinstance(deltas, str) else ""
        raise TypeError(f"deltas must be a list of integers such as [30, 50], got {type(deltas).__name__} "
                        f"{deltas!r:.80}{fix}")
    out = tuple(deltas)
    if not out or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 1 <= d <= MAX_DELTA
                      for d in out):
        raise ConfigError(f"--delta must be a comma-separated list of integers in 1..{MAX_DELTA}, got {list(out)}; "
                          f"e.g. --delta 30,50 (the paper's thresholds)")
    twice = sorted({int(d) for d in out if list(out).count(d) > 1})
    if twice:
        # Each threshold's hits were added once per listing: Acc(5) of 5,5 read 200%.
        raise ConfigError(f"--delta gives {', '.join(map(str, twice))} more than once; give each threshold once, "
                          f"e.g. --delta 30,50")
    return tuple(int(d) for d in out)


def parse_deltas(text: str) -> tuple[int, ...]:
    """``"30,50"`` -> (30, 50), checked by ``check_deltas``."""
    if not isinstance(text, str):
        raise TypeError(f"parse_deltas: text must be a string such as '30,50', got {type(text).__name__} {text!r:.80}; "
                        f"check_deltas takes a list of integers")
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise ConfigError(f"--delta must be comma-separated integers, got {text!r}; e.g. --delta 30,50") from e
    return check_deltas(values)


def pixel_distance_and_accuracy(pred: np.ndarray, target: np.ndarray, deltas: Sequence[int] = (30, 50)
                                ) -> tuple[float, int, dict[int, int]]:
    """Per-image sums for ``paired_scores`` (so that the mean is over all pixels of all images).

    Args:
        pred, target: (H, W, 3) uint8 RGB arrays of equal shape.
        deltas: Acc thresholds in 0-255 units.

    Returns:
        (sum over pixels of sqrt(dr^2 + dg^2 + db^2), number of pixels H*W,
         {delta: number of pixels with max(|dr|, |dg|, |db|) < delta}).

    Raises:
        TypeError: ``pred`` or ``target`` is not a numpy array of dtype uint8 (a 16-bit array overflowed into NaN
            distances, floats in 0..1 were scored as 0..255 values, a tensor or a list was an AttributeError).
        DataError: the arrays are not (H, W, 3) or differ in shape.
        ConfigError: invalid ``deltas`` (see `check_deltas`).
    """
    for name, array in (("pred", pred), ("target", target)):
        if not isinstance(array, np.ndarray) or array.dtype != np.uint8:
            got = f"a {array.dtype} array" if isinstance(array, np.ndarray) else type(array).__name__
            raise TypeError(f"pixel_distance_and_accuracy: {name} must be a numpy uint8 (H, W, 3) RGB array, got "
                            f"{got}; read images with np.asarray(srunit.data.load_rgb(path)), or convert a tensor with "
                            f"x.numpy() and scale it to 0..255 first")
    deltas = check_deltas(deltas)
    if pred.shape != target.shape or pred.ndim != 3 or pred.shape[2] != 3:
        raise DataError(f"prediction {pred.shape} and target {target.shape} must both be (H, W, 3) RGB "
                        f"arrays of the same size")
    # int32 so differences of uint8 values do not wrap around.
    diff = pred.astype(np.int32) - target.astype(np.int32)
    dist = np.sqrt((diff * diff).sum(axis=2, dtype=np.float64))
    worst = np.abs(diff).max(axis=2)
    hits = {int(d): int(np.count_nonzero(worst < d)) for d in deltas}
    return float(dist.sum()), int(worst.size), hits


_HINT = "pass --pred DIR with the translated images and --target DIR with the ground truth"


def check_pred_and_target(pred_root: Path, target_root: Path) -> None:
    """DataError where one of the predictions' and the targets' folders lies inside the other. Predictions inside the
    targets were "target file(s) without a prediction partner ...; remove these": the predictions themselves. (One
    folder twice is the benchmark's upper bound: `eval paired` refuses that itself.) `evaluate_run_paired` asks
    before it copies the predictions into the run."""
    nested = nested_folders(pred_root, "--pred", target_root, "--target")
    if nested is not None:
        raise DataError(f"{nested}, so the inner one's images would be read as the outer one's too and left without a "
                        f"partner; {_HINT}, neither inside the other")


def paired_scores(pred_dir: str | Path, target_dir: str | Path, deltas: Sequence[int] = (30, 50), *,
                  show_progress: bool = False) -> PairedScores:
    """Dist and Acc(delta) of translated images against ground-truth targets (Sec. 5.1.3-5.1.4).

    Both folders are scanned recursively; files pair by relative path without extension. Images
    are decoded to 8-bit RGB with ``load_rgb`` and must have the same size (no resizing). ``show_progress``: a
    progress bar of the pairs scored, with the time left, where standard error is a terminal.

    Raises:
        DataError: a folder is missing/empty or lies inside the other, a file has no partner, or sizes differ.
        ConfigError: invalid ``deltas``.
    """
    deltas = check_deltas(deltas)
    show_progress = check_flag(show_progress, "paired_scores: show_progress")
    pred_root = check_path(pred_dir, "paired_scores: pred_dir").expanduser()
    target_root = check_path(target_dir, "paired_scores: target_dir").expanduser()
    check_pred_and_target(pred_root, target_root)
    hint = _HINT
    pairs = pair_by_stem((scan_images(pred_root, "prediction", hint=hint), pred_root, "prediction"),
                         (scan_images(target_root, "target", hint=hint), target_root, "target"))
    warn_of_several_frames((path for pair in pairs for path in pair), "--pred or --target image", "scored")
    dist_sum, count = 0.0, 0
    hits = {d: 0 for d in deltas}
    with progress_bar(len(pairs), "image", show_progress) as bar:
        for pred_path, target_path in pairs:
            pred = np.asarray(load_rgb(pred_path), dtype=np.uint8)
            target = np.asarray(load_rgb(target_path), dtype=np.uint8)
            if pred.shape != target.shape:
                raise DataError(f"prediction {pred_path} is {pred.shape[1]}x{pred.shape[0]} but target "
                                f"{target_path} is {target.shape[1]}x{target.shape[0]} (width x height); translate "
                                f"at the target resolution or resize one of them before evaluating")
            d, c, h = pixel_distance_and_accuracy(pred, target, deltas)
            dist_sum += d
            count += c
            for k in deltas:
                hits[k] += h[k]
            bar.update(1)
    assert count > 0  # scan_images guarantees at least one non-empty image
    return PairedScores(dist=dist_sum / count, acc={d: hits[d] / count for d in deltas},
                        num_images=len(pairs), num_pixels=count)
