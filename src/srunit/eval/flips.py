"""Semantic flips measured directly: which share of each source class the segmenter puts in another class.

A confusion matrix ``counts[label, pred]`` (rows: the class of the source pixel, columns: the class the
segmenter gives the translation there, plus one "other" column) already holds every flip. This module
reads it as flips:

- **flip matrix**: each row divided by its class's pixel count, so entry (c, d) is the fraction of class
  c's pixels that became class d. Its diagonal is what was kept; the last column ("other") holds the
  pixels the segmenter put outside the N classes (the SynthScapes scorer's *not rendered* output: the
  translation still looks like the label map there). Those are failures to translate, not flips into
  another class, and are reported apart.
- **per-class flip rate**: the fraction of class c's pixels assigned to another of the N classes.
- **flip rate** (overall): the fraction of all labelled pixels assigned to another of the N classes.
- **directed flip rate** (the headline where a data set has unmatched statistics): among the pixels of
  the classes over-represented in domain A, the fraction assigned to domain B's dominant class. With
  class shares s_A(c) and s_B(c) of the two training domains, a class is *over-represented in A* when
  s_A(c) >= 1.5 s_B(c), and *B's dominant class* is the class with the largest s_B(c) / s_A(c) (it must
  be at least 1.5 as well): the class a generator that matches B's statistics has most reason to paint.
  On SynthScapes' unmatched split these are sky and building (A) flipping into vegetation (B).

Lower is better for every rate here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from srunit.errors import ConfigError, DataError

__all__ = ["OVER_REPRESENTED", "FlipScores", "flip_scores", "directed_flip_classes", "class_ids"]

OVER_REPRESENTED = 1.5  # share ratio from which a class counts as over-represented in one domain


@dataclass(frozen=True)
class FlipScores:
    """Flips of one set of translations; every rate is a fraction in [0, 1] (NaN: no pixel of the class).

    ``matrix``: (N, N + 1) fractions, row = source class, column = the segmenter's class on the
    translation, last column = "other" (outside the N classes, e.g. *not rendered*).
    """

    class_names: list[str]
    matrix: np.ndarray
    per_class: np.ndarray
    unrendered: np.ndarray
    flip_rate: float
    unrendered_rate: float
    flip_from: tuple[int, ...] = ()
    flip_to: int | None = None
    directed_flip_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the rates, the per-class rates and top destination, and the matrix (None for NaN)."""
        def num(x: float) -> float | None:
            return None if np.isnan(x) else float(x)

        n = len(self.class_names)
        per_class = []
        for c, name in enumerate(self.class_names):
            row = self.matrix[c, :n].copy()
            row[c] = -1.0
            # None where no pixel of c went to another class: argmax then named the first class, at a rate of 0
            to = int(np.argmax(row)) if self.per_class[c] > 0 else None
            per_class.append({"id": c, "name": name, "flip_rate": num(self.per_class[c]),
                              "unrendered": num(self.unrendered[c]),
                              "top_destination": None if to is None else self.class_names[to],
                              "top_destination_rate": None if to is None else num(self.matrix[c, to])})
        out: dict[str, Any] = {
            "flip_rate": self.flip_rate, "unrendered_rate": self.unrendered_rate, "per_class": per_class,
            "matrix": [[num(v) for v in row] for row in self.matrix],
        }
        if self.flip_to is not None:
            out.update({"directed_flip_rate": num(self.directed_flip_rate if self.directed_flip_rate is not None
                                                  else float("nan")),
                        "flip_from": [self.class_names[c] for c in self.flip_from],
                        "flip_to": self.class_names[self.flip_to]})
        return out


def flip_scores(counts: np.ndarray, class_names: Sequence[str], *, flip_from: Sequence[int] = (),
                flip_to: int | None = None) -> FlipScores:
    """The flips in a confusion matrix.

    Args:
        counts: (N, N + 1) pixel counts, ``counts[label, pred]``, the last column for predictions outside
            [0, N) (``ConfusionMatrix.counts``).
        class_names: the N class names.
        flip_from, flip_to: the directed flip rate's source classes and destination class (ids); both or
            neither.

    Raises:
        DataError: ``counts`` is not (N, N + 1) or holds no pixel.
        ConfigError: ``flip_from``/``flip_to`` are out of range, overlap, or only one is given.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n = len(class_names)
    if counts.shape != (n, n + 1):
        raise DataError(f"a flip matrix needs ({n}, {n + 1}) counts for {n} classes, got {counts.shape}")
    if bool(flip_from) != (flip_to is not None):
        raise ConfigError("the directed flip rate needs both its source classes (--flip-from) and its destination "
                          "class (--flip-to); give both or neither")
    for c in (*flip_from, *(() if flip_to is None else (flip_to,))):
        if not 0 <= c < n:
            raise ConfigError(f"flip class id {c} is outside 0..{n - 1}")
    if flip_to is not None and flip_to in flip_from:
        raise ConfigError(f"--flip-to {class_names[flip_to]!r} is also among --flip-from; a class cannot flip into "
                          f"itself")
    totals = counts.sum(axis=1)
    if totals.sum() == 0:
        raise DataError("no labelled pixels to count flips in")
    kept = np.diag(counts[:, :n])
    other = counts[:, n]
    flipped = totals - kept - other  # to another of the N classes
    with np.errstate(divide="ignore", invalid="ignore"):
        matrix = counts / totals[:, None]
        per_class = np.where(totals > 0, flipped / totals, np.nan)
        unrendered = np.where(totals > 0, other / totals, np.nan)
    matrix[totals == 0] = np.nan
    directed = None
    if flip_to is not None:
        rows = list(flip_from)
        pixels = counts[rows].sum()
        directed = float(counts[rows, flip_to].sum() / pixels) if pixels > 0 else float("nan")
    return FlipScores(list(class_names), matrix, per_class, unrendered, float(flipped.sum() / totals.sum()),
                      float(other.sum() / totals.sum()), tuple(int(c) for c in flip_from),
                      None if flip_to is None else int(flip_to), directed)


def directed_flip_classes(share_a: Mapping[str, float], share_b: Mapping[str, float],
                          class_names: Sequence[str], factor: float = OVER_REPRESENTED
                          ) -> tuple[tuple[int, ...], int | None]:
    """The directed flip rate's classes from the class shares of the two training domains (module docstring).

    Returns:
        (ids of the classes over-represented in A, id of B's dominant class), or ((), None) where the domains
        have no such pair (matched statistics).
    """
    eps = 1e-12
    ratio = {c: (share_b.get(name, 0.0) + eps) / (share_a.get(name, 0.0) + eps) for c, name in enumerate(class_names)}
    to = max(ratio, key=lambda c: ratio[c])
    sources = tuple(c for c in ratio if 1.0 / ratio[c] >= factor and share_a.get(class_names[c], 0.0) > 0)
    if ratio[to] < factor or not sources:
        return (), None
    return sources, to


def class_ids(spec: str | Sequence[str], class_names: Sequence[str], option: str) -> tuple[int, ...]:
    """``--flip-from sky,building`` / ``--flip-to 2``: class names or ids -> ids.

    Raises:
        ConfigError: a name that is not a class (named, with the classes).
    """
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    out = []
    for item in items:
        if item in class_names:
            out.append(list(class_names).index(item))
        elif item.isdigit() and int(item) < len(class_names):
            out.append(int(item))
        else:
            raise ConfigError(f"{option}: {item!r} is not a class; give class names ({', '.join(class_names)}) or ids "
                              f"0..{len(class_names) - 1}")
    if not out:
        raise ConfigError(f"{option} is empty; give class names or ids")
    return tuple(dict.fromkeys(out))
