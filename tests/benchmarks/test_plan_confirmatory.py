"""The sizing of a confirmatory study (benchmarks/plan_confirmatory.py) against textbook values."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

ROOT = Path(__file__).resolve().parents[2]


def _plan():
    spec = importlib.util.spec_from_file_location("plan_confirmatory", ROOT / "benchmarks" / "plan_confirmatory.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _power_by_simulation(n: int, effect: float, alpha: float = 0.05, trials: int = 20_000) -> float:
    rng = np.random.default_rng(0)
    d = rng.normal(effect, 1.0, (trials, n))
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(n))
    return float(np.mean(np.abs(t) > stats.t.ppf(1 - alpha / 2, n - 1)))


def test_pairs_for_a_power_agree_with_a_simulated_t_test() -> None:
    plan = _plan()
    n = plan.pairs_needed(0.8, 1.0, 0.05, 0.8)
    assert n == 15  # the standard table value for a paired t-test at d = 0.8
    assert _power_by_simulation(n, 0.8) >= 0.79 and _power_by_simulation(n - 1, 0.8) < 0.8


@pytest.mark.parametrize("pairs", [8, 16, 24])
def test_the_smallest_detectable_effect_is_the_inverse_of_the_pairs_needed(pairs: int) -> None:
    plan = _plan()
    effect = plan.smallest_effect(pairs, 2.0, 0.05, 0.8)
    assert plan.pairs_needed(effect * 1.001, 2.0, 0.05, 0.8) <= pairs < plan.pairs_needed(effect * 0.98, 2.0, 0.05,
                                                                                           0.8)
    assert _power_by_simulation(pairs, effect / 2.0) == pytest.approx(0.8, abs=0.015)
