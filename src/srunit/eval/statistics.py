"""Paired comparisons over seeds: is method M better than a baseline, or is it seed noise?

Two methods trained with the same seeds on the same data give paired scores; the difference of
each pair removes what the seed and the data do to both, and the t interval of the mean
difference says whether the difference is established at the given confidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["PairedDifference", "paired_difference"]


@dataclass(frozen=True)
class PairedDifference:
    """Mean of (score - baseline score) over ``n`` pairs with its two-sided t confidence interval.

    ``std`` is the sample standard deviation (ddof=1) of the differences; ``low``/``high`` are NaN
    when n < 2 (one pair has no spread to estimate).
    """

    n: int
    mean: float
    std: float
    low: float
    high: float
    confidence: float
    p_value: float = math.nan  # two-sided, of the paired t-test of mean 0 (NaN below 2 pairs)

    @property
    def established(self) -> bool:
        """Whether the interval excludes 0 (a difference at this confidence, in either direction)."""
        return self.n >= 2 and (self.low > 0 or self.high < 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN becomes None), with ``established``."""
        out = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}
        return {**out, "established": self.established}


def paired_difference(scores: Sequence[float], baseline: Sequence[float], confidence: float = 0.95) -> PairedDifference:
    """The mean of ``scores[i] - baseline[i]`` and its t interval (n - 1 degrees of freedom).

    scores, baseline: the same number of values, pair i from the same seed and data.
    """
    if len(scores) != len(baseline):
        raise ValueError(f"paired scores need equal lengths, got {len(scores)} and {len(baseline)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    d = np.asarray(scores, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    n = len(d)
    if n == 0:
        return PairedDifference(0, math.nan, math.nan, math.nan, math.nan, confidence)
    mean = float(d.mean())
    if n < 2:
        return PairedDifference(n, mean, math.nan, math.nan, math.nan, confidence)
    from scipy.stats import t  # imported here: the rest of the package does not need scipy at import

    std = float(d.std(ddof=1))
    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    if std > 0:
        p_value = float(2 * t.sf(abs(mean) / (std / math.sqrt(n)), n - 1))
    else:  # every pair differs by the same amount: no spread to test against
        p_value = 1.0 if mean == 0 else 0.0
    return PairedDifference(n, mean, std, mean - half, mean + half, confidence, p_value)
