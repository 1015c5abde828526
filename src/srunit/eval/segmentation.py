"""Segmentation scores of translated images: pixel accuracy, class accuracy, mean IoU.

These are the "FCN scores" of the paper (Sec. 5.1.1, App. B): a fixed segmenter trained on the
target domain labels the translated images, and its output is compared with the ground-truth
label maps of the source images. All pixels of all images go into one confusion matrix, so the
scores are dataset-level (not means of per-image scores).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from srunit.checks import MAX_CLASSES, check_ignore_index, check_int
from srunit.errors import ConfigError, DataError

__all__ = ["ConfusionMatrix", "SegmentationScores", "class_name_list", "segmentation_scores"]

LABEL_HINT = ("check that --classes and --ignore-index match the dataset, and that the label maps "
              "hold class ids (e.g. Cityscapes train ids 0..18 with 255 = ignore), not colours or raw ids")


def _to_numpy(x: np.ndarray | torch.Tensor, what: str, source: str) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise DataError(f"{what}{source} has dtype {arr.dtype}; it must hold integer class ids "
                        f"(argmax the logits / load the label map as an integer image)")
    return arr.astype(np.int64, copy=False)


class ConfusionMatrix:
    """Pixel counts ``counts[label, pred]`` accumulated over many images (int64).

    Shape of ``counts``: (N, N + 1). Column N ("other") counts pixels whose predicted id lies
    outside [0, N): they are misses for their label class (they lower its accuracy and IoU) and
    a false positive for no class. ``matrix`` is the square (N, N) part.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes = check_int(num_classes, "--classes", 1, maximum=MAX_CLASSES,
                                     fix="pass the number of classes the segmenter predicts (19 for Cityscapes)")
        self.ignore_index = check_ignore_index(ignore_index)
        self.counts = np.zeros((num_classes, num_classes + 1), dtype=np.int64)

    @property
    def matrix(self) -> np.ndarray:
        """(N, N) int64 counts, rows = ground-truth class, columns = predicted class."""
        return self.counts[:, : self.num_classes]

    def update(self, pred: np.ndarray | torch.Tensor, label: np.ndarray | torch.Tensor, *,
               source: str = "") -> None:
        """Add one prediction / label pair.

        Args:
            pred: integer class ids, any shape (e.g. (H, W) or (B, H, W)); values outside
                [0, N) are counted in the "other" column (a miss for the label class).
            label: integer class ids, same shape as ``pred``; pixels equal to ``ignore_index``
                are skipped (the ignore index wins even if it lies in [0, N)).
            source: a file name (or other description) used in error messages.

        Raises:
            DataError: shapes differ, non-integer dtype, or a label value outside [0, N) that is
                not the ignore index.
        """
        where = f" ({source})" if source else ""
        p = _to_numpy(pred, "prediction", where)
        y = _to_numpy(label, "label map", where)
        if p.shape != y.shape:
            raise DataError(f"prediction shape {p.shape} != label map shape {y.shape}{where}; the segmenter "
                            f"must return one class id per label pixel (same height and width)")
        keep = y != self.ignore_index
        y = y[keep]
        p = p[keep]
        n = self.num_classes
        bad = (y < 0) | (y >= n)
        if bad.any():
            values = np.unique(y[bad])
            shown = ", ".join(str(v) for v in values[:8]) + (", ..." if values.size > 8 else "")
            raise DataError(f"label map{where} holds value(s) {shown} outside [0, {n}) that are not the "
                            f"ignore index {self.ignore_index}; {LABEL_HINT}")
        # Every out-of-range prediction goes to the single "other" column n.
        p = np.where((p < 0) | (p >= n), n, p)
        self.counts += np.bincount(y * (n + 1) + p, minlength=n * (n + 1)).reshape(n, n + 1)


@dataclass
class SegmentationScores:
    """Dataset-level segmentation scores; all values are fractions in [0, 1].

    ``per_class_*`` arrays have shape (N,) and are NaN for classes absent from the labels;
    the means are taken over the classes present in the labels only.
    """

    pixel_accuracy: float
    class_accuracy: float
    mean_iou: float
    per_class_accuracy: np.ndarray
    per_class_iou: np.ndarray
    absent_classes: list[int]
    num_pixels: int
    class_names: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the three scores, per-class accuracy and IoU (None for absent classes),
        the absent class ids and the number of labelled pixels."""
        def num(x: float) -> float | None:
            return None if np.isnan(x) else float(x)

        return {
            "pixel_accuracy": self.pixel_accuracy, "class_accuracy": self.class_accuracy, "mean_iou": self.mean_iou,
            "per_class": [{"id": i, "name": n, "accuracy": num(self.per_class_accuracy[i]),
                           "iou": num(self.per_class_iou[i])} for i, n in enumerate(self.class_names)],
            "absent_classes": self.absent_classes, "num_pixels": self.num_pixels,
        }


def class_name_list(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    """The names of ``num_classes`` classes: ``class_names`` checked for length, or "class i".

    Raises:
        TypeError: ``class_names`` is one string.
        ConfigError: ``class_names`` does not have ``num_classes`` entries.
    """
    if class_names is None:
        return [f"class {i}" for i in range(num_classes)]
    if isinstance(class_names, (str, bytes)):  # 'abc' was read as the three classes 'a', 'b' and 'c'
        raise TypeError(f"class_names must be a list of names, one per class, got {type(class_names).__name__} "
                        f"{class_names!r:.80}; split a comma-separated text first: text.split(',')")
    if not isinstance(class_names, Iterable):  # True, 3: "'bool' object is not iterable"
        raise TypeError(f"class_names must be a list of names, one per class, got {type(class_names).__name__} "
                        f"{class_names!r:.80}")
    names = list(class_names)
    if len(names) != num_classes:
        raise ConfigError(f"{len(names)} class names were given but --classes is {num_classes}; pass "
                          f"--classes {len(names)}, or no names (--class-names none)")
    return names


def segmentation_scores(cm: ConfusionMatrix, class_names: Sequence[str] | None = None) -> SegmentationScores:
    """Pixel accuracy, class accuracy and mean IoU of a confusion matrix (Sec. 5.1.1, App. B).

    With T_c = counts[c, c], G_c = labelled pixels of class c (row sum incl. "other"), and
    P_c = pixels predicted as c (column sum):
    pixAcc = sum T_c / sum G_c; acc_c = T_c / G_c; IoU_c = T_c / (G_c + P_c - T_c);
    clsAcc and mIoU are the means of acc_c and IoU_c over the classes with G_c > 0.

    Args:
        cm: an accumulated confusion matrix.
        class_names: optional N names (default: "class i").

    Raises:
        ConfigError: ``class_names`` does not have N entries.
        DataError: the matrix holds no labelled pixel.
        TypeError: ``cm`` is not a `ConfusionMatrix` (an array of counts was an AttributeError).
    """
    if not isinstance(cm, ConfusionMatrix):
        raise TypeError(f"segmentation_scores: cm must be a ConfusionMatrix, got {type(cm).__name__}; build one with "
                        f"ConfusionMatrix(num_classes) and add each prediction with cm.update(pred, label)")
    n = cm.num_classes
    names = class_name_list(class_names, n)
    counts = cm.counts.astype(np.float64)
    tp = np.diag(counts[:, :n])
    gt = counts.sum(axis=1)
    predicted = counts[:, :n].sum(axis=0)
    total = gt.sum()
    if total == 0:
        raise DataError("no labelled pixels were evaluated (every label pixel equals the ignore index "
                        f"{cm.ignore_index}, or no images); check --labels and --ignore-index")
    present = gt > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = np.where(present, tp / gt, np.nan)
        iou = np.where(present, tp / (gt + predicted - tp), np.nan)
    return SegmentationScores(
        pixel_accuracy=float(tp.sum() / total),
        class_accuracy=float(np.nanmean(acc)),
        mean_iou=float(np.nanmean(iou)),
        per_class_accuracy=acc,
        per_class_iou=iou,
        absent_classes=[int(i) for i in np.flatnonzero(~present)],
        num_pixels=int(total),
        class_names=names,
    )
