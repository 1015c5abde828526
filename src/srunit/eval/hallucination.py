"""Hallucinations: pixels a translation paints as a class that its source does not hold there.

Where a class exists in domain B only (non-bijective domains: highways in the target maps and none in
the source photos, tumours in the target scans only), a translator that matches domain B's statistics
paints it into translations of domain-A images. With the segmenter's class on the translation and the
source's label, from the confusion matrix ``counts[label, pred]`` (rows: the source pixel's class,
columns: the segmenter's class on the translation, plus one "other" column) and the hallucinated class c:

    hallucination rate = sum over source classes c' != c of counts[c', c] / all labelled pixels

(several hallucinated classes: summed over them). Where the sources never hold c (the SynthScapes
``nonbijective`` condition, and the test split of ``srunit data mismatch``), every pixel segmented as c
is a hallucination, and the rate is the share of the translations' labelled pixels segmented as c;
where sources do hold c, pixels of c kept as c are not counted. Beside the rate, where the hallucinated
pixels come from: the share of them on each source class (a generator that paints cars on roads
shows as ``road``). Lower is better.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from srunit.errors import ConfigError, DataError

__all__ = ["HallucinationScores", "hallucination_scores"]


@dataclass(frozen=True)
class HallucinationScores:
    """The hallucinations of one set of translations; rates are fractions of the labelled pixels, in [0, 1]."""

    classes: list[str]  # the hallucinated classes
    rate: float  # all of them together
    per_class: dict[str, float]  # each hallucinated class alone
    sources: dict[str, float]  # source class -> its share of the hallucinated pixels (NaN-free; {} when none)
    pixels: int  # hallucinated pixels
    labelled: int  # labelled pixels

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (an evaluation record's ``segmentation.hallucination``)."""
        return {"hallucination_rate": self.rate, "classes": list(self.classes), "per_class": dict(self.per_class),
                "sources": dict(self.sources), "pixels": self.pixels, "labelled_pixels": self.labelled}


def hallucination_scores(counts: np.ndarray, class_names: Sequence[str], classes: Sequence[int]) -> HallucinationScores:
    """The hallucinations of ``classes`` in a confusion matrix.

    Args:
        counts: (N, N + 1) pixel counts, ``counts[label, pred]``, the last column for predictions outside [0, N)
            (``ConfusionMatrix.counts``).
        class_names: the N class names.
        classes: ids of the hallucinated classes (the classes domain A does not hold).

    Raises:
        DataError: ``counts`` is not (N, N + 1) finite counts >= 0, or holds no pixel.
        TypeError: ``classes`` is not a list of integer ids.
        ConfigError: ``classes`` is empty or holds an id outside 0..N-1.
    """
    raw = np.asarray(counts)
    # NaN and inf were "cannot convert float NaN to integer", negative counts a negative rate of pixels, complex ones
    # lost their imaginary part with numpy's warning only, and a string "could not convert string to float".
    if raw.dtype.kind not in "uif" or not np.isfinite(raw).all() or (raw < 0).any():
        holding = " holding NaN, inf or negative values" if raw.dtype.kind in "uif" else ""
        raise DataError(f"hallucination_scores: counts must be pixel counts (finite numbers >= 0), got an array of "
                        f"{raw.dtype}{holding}")
    counts = raw.astype(np.float64)
    n = len(class_names)
    if counts.shape != (n, n + 1):
        raise DataError(f"hallucination counts need ({n}, {n + 1}) counts for {n} classes, got {counts.shape}")
    if isinstance(classes, (str, bytes)) or not isinstance(classes, (Sequence, np.ndarray)) or any(
            isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)) for c in classes):
        # a string class name was "invalid literal for int()", one id "'int' object is not iterable", 1.7 was class 1
        raise TypeError(f"hallucination_scores: classes must be a list of class ids (integers), got "
                        f"{type(classes).__name__} {classes!r:.80}; class names give ids by their position: "
                        f"[class_names.index(name)]")
    classes = list(dict.fromkeys(int(c) for c in classes))
    if not classes:
        raise ConfigError("no hallucinated class given; name the class the sources never hold "
                          "(e.g. --hallucinated car)")
    for c in classes:
        if not 0 <= c < n:
            raise ConfigError(f"hallucinated class id {c} is outside 0..{n - 1}")
    labelled = counts.sum()
    if labelled == 0:
        raise DataError("no labelled pixels to count hallucinations in")
    painted = counts[:, classes].copy()  # (N, k): source class -> pixels segmented as each hallucinated class
    for j, c in enumerate(classes):
        painted[c, j] = 0.0  # a pixel of c kept as c is no hallucination
    total = painted.sum()
    by_source = painted.sum(axis=1)
    sources = {class_names[int(i)]: float(by_source[i] / total) for i in np.flatnonzero(by_source)} if total else {}
    return HallucinationScores([class_names[c] for c in classes], float(total / labelled),
                               {class_names[c]: float(painted[:, j].sum() / labelled) for j, c in enumerate(classes)},
                               sources, int(total), int(labelled))
