"""Our patch and layer samplers draw from the distributions of the public SRUNIT code's samplers.

The parity harness (benchmarks/parity_core.py) runs both codes' samplers on its own random source: the
public code's ``np.random.permutation`` and ``np.random.choice``, our `sample_patch_ids` and
`Robustness.layers`. The calls differ by design (ours draws positions per image on the device, from
``torch.rand``; our layer is a pure function of the seed and the step, so that a resumed run draws the
same), so the harness shows that the algorithms agree on the same source, and these tests show that
ours, on its own generators, draws what the public samplers draw:

- positions: a uniformly random set of P of the H*W positions (the public code: the first P entries
  of a uniform permutation), for each image independently of the others (the public code shares one
  set across a batch: a documented difference, docs/parity.md);
- layer: uniform over the K layers of Eq. 3 (the public code: ``np.random.choice`` of its K layers),
  independent from step to step, and the same for the same (seed, step).

Chi-square tests at a 1e-6 level on fixed seeds: deterministic, and a sampler that favours some
positions or layers, or repeats one image's positions for another, fails them by far.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import stats

from srunit.config import load_config
from srunit.methods import build_method
from srunit.methods.base import StepContext
from srunit.networks import sample_patch_ids

LEVEL = 1e-6
H, W, P = 2, 3, 2  # 6 positions, sets of 2: 15 possible sets
SETS = {s: i for i, s in enumerate(itertools.combinations(range(H * W), P))}
DRAWS = 8000


def _set_index(ids: np.ndarray) -> int:
    return SETS[tuple(sorted(int(i) for i in ids))]


def _ours(images: int, seed: int = 0) -> np.ndarray:
    """Set indices of our sampler's positions for ``images`` images of one batch."""
    torch.manual_seed(seed)
    ids = sample_patch_ids(torch.zeros(images, 4, H, W), P).numpy()
    return np.array([_set_index(row) for row in ids])


def _public(draws: int, seed: int = 0) -> np.ndarray:
    """Set indices of the public sampler: the first P entries of np.random.permutation(H*W)."""
    rng = np.random.RandomState(seed)
    return np.array([_set_index(rng.permutation(H * W)[:P]) for _ in range(draws)])


def _counts(indices: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(indices, minlength=k)


def test_our_patch_sampler_draws_uniform_sets_as_the_public_code() -> None:
    ours, public = _counts(_ours(DRAWS), len(SETS)), _counts(_public(DRAWS), len(SETS))
    assert stats.chisquare(ours).pvalue > LEVEL, ours  # uniform over the 15 sets
    assert stats.chisquare(public).pvalue > LEVEL, public
    assert stats.chi2_contingency(np.stack([ours, public]))[1] > LEVEL  # one distribution
    assert (ours > 0).all()


def test_our_patch_sampler_draws_each_image_independently() -> None:
    """Image 2i and image 2i+1 of one batch: their sets are independent (the public code would give both
    the same set)."""
    sets = _ours(2 * DRAWS).reshape(DRAWS, 2)
    table = np.zeros((len(SETS), len(SETS)))
    np.add.at(table, (sets[:, 0], sets[:, 1]), 1)
    assert stats.chi2_contingency(table)[1] > LEVEL
    assert (sets[:, 0] == sets[:, 1]).mean() < 0.1  # 1/15 when independent; 1 when shared


def test_the_check_fails_a_sampler_that_favours_positions() -> None:
    """The tests above are not vacuous: "always the first positions", or one set per batch, fails them."""
    first = _counts(np.zeros(DRAWS, dtype=int), len(SETS))
    assert stats.chisquare(first).pvalue < LEVEL
    shared = _ours(DRAWS)
    table = np.zeros((len(SETS), len(SETS)))
    np.add.at(table, (shared, shared), 1)
    assert stats.chi2_contingency(table)[1] < LEVEL


@pytest.fixture(scope="module")
def robust_term():
    config = load_config("srunit-official").with_overrides(["model.ngf=4", "model.ndf=4", "model.n_blocks=1",
                                                            "model.projector_dim=4"])
    method = build_method(config.method, config.model)
    term = method.regularizers["robust"]
    assert term.options.sample_one_layer and len(term.options.layers) == 5
    return term


def _layers(term, seed: int, steps: int) -> np.ndarray:
    picks = [term.layers(StepContext(step, steps, seed)) for step in range(steps)]
    assert all(len(p) == 1 for p in picks)
    return np.array([p[0] for p in picks])


def test_our_layer_sampler_draws_uniform_layers_as_the_public_code(robust_term) -> None:
    ours = _counts(_layers(robust_term, seed=0, steps=DRAWS), 5)
    public = _counts(np.random.RandomState(0).choice(range(5), DRAWS), 5)  # the public np.random.choice
    assert stats.chisquare(ours).pvalue > LEVEL, ours
    assert stats.chi2_contingency(np.stack([ours, public]))[1] > LEVEL


def test_our_layer_sampler_is_independent_from_step_to_step_and_repeatable(robust_term) -> None:
    layers = _layers(robust_term, seed=3, steps=DRAWS)
    table = np.zeros((5, 5))
    np.add.at(table, (layers[:-1], layers[1:]), 1)
    assert stats.chi2_contingency(table)[1] > LEVEL  # this step's layer says nothing of the next one's
    assert np.array_equal(layers[:50], _layers(robust_term, seed=3, steps=50))  # a resumed run draws the same
    assert not np.array_equal(layers[:50], _layers(robust_term, seed=4, steps=50))  # another seed, others
