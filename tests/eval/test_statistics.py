"""srunit.eval.statistics: the paired t interval, against textbook values."""

from __future__ import annotations

import math

import pytest

from srunit.eval.statistics import paired_difference


def test_interval_matches_the_t_table() -> None:
    # Differences 1..5: mean 3, sample std sqrt(2.5); t(0.975, 4 df) = 2.776445 (printed tables).
    d = paired_difference([2.0, 4.0, 6.0, 8.0, 10.0], [1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.776445 * math.sqrt(2.5) / math.sqrt(5)
    assert (d.n, d.mean, d.std) == (5, pytest.approx(3.0), pytest.approx(math.sqrt(2.5)))
    assert d.low == pytest.approx(3.0 - half, abs=1e-5) and d.high == pytest.approx(3.0 + half, abs=1e-5)
    assert d.established and d.to_dict()["established"] is True
    # 90%: t(0.95, 4 df) = 2.131847.
    d90 = paired_difference([2.0, 4.0, 6.0, 8.0, 10.0], [1.0, 2.0, 3.0, 4.0, 5.0], confidence=0.9)
    assert d90.high - d90.mean == pytest.approx(2.131847 * math.sqrt(0.5), abs=1e-5)


def test_an_interval_across_zero_is_not_established_and_sign_follows_the_order() -> None:
    d = paired_difference([0.5, 0.7, 0.4], [0.6, 0.5, 0.5])  # differences -0.1, +0.2, -0.1
    assert d.low < 0 < d.high and not d.established
    assert paired_difference([0.6, 0.5, 0.5], [0.5, 0.7, 0.4]).mean == pytest.approx(-d.mean)
    below = paired_difference([1.0, 1.1, 0.9], [2.0, 2.0, 2.0])
    assert below.high < 0 and below.established


def test_one_pair_has_no_interval_and_bad_input_is_refused() -> None:
    one = paired_difference([0.7], [0.6])
    assert one.n == 1 and one.mean == pytest.approx(0.1) and math.isnan(one.low) and not one.established
    assert one.to_dict()["low"] is None
    assert paired_difference([], []).n == 0
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="confidence"):
        paired_difference([1.0, 2.0], [1.0, 1.0], confidence=1.0)
