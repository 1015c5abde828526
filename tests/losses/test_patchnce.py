"""srunit.losses.patchnce: PatchNCE (Eq. 2) against a hand computation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from srunit.losses import NEGATIVES, patch_nce_loss


def _unit(v: list[float]) -> list[float]:
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def test_patchnce_matches_hand_computation() -> None:
    # One image, three positions, 2-d features: Eq. 2 written out with Python floats.
    q = [_unit([1.0, 0.2]), _unit([0.3, 1.0]), _unit([-1.0, 0.5])]
    k = [_unit([0.9, 0.1]), _unit([0.0, 1.0]), _unit([-0.8, -0.6])]
    t = 0.07
    expected = 0.0
    for i in range(3):
        dots = [sum(a * b for a, b in zip(q[i], k[j])) / t for j in range(3)]
        pos = math.exp(dots[i])
        neg = sum(math.exp(dots[j]) for j in range(3) if j != i)
        expected += -math.log(pos / (pos + neg))
    expected /= 3
    got = patch_nce_loss(torch.tensor([q]), torch.tensor([k]), t)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_patchnce_negatives_image_vs_batch() -> None:
    assert NEGATIVES == ("image", "batch")
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(2, 4, 8, generator=g), dim=-1)
    k = F.normalize(torch.randn(2, 4, 8, generator=g), dim=-1)
    per_image = sum(patch_nce_loss(q[b : b + 1], k[b : b + 1]) for b in range(2)) / 2
    assert patch_nce_loss(q, k, negatives="image").item() == pytest.approx(per_image.item(), rel=1e-6)
    # Whole-minibatch negatives: 8 candidates per row instead of 4.
    sim = q.reshape(8, 8) @ k.reshape(8, 8).T / 0.07
    expected = F.cross_entropy(sim, torch.arange(8))
    assert patch_nce_loss(q, k, negatives="batch").item() == pytest.approx(expected.item(), rel=1e-6)


def test_patchnce_gradient_flows_to_query_only() -> None:
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(1, 5, 4, generator=g), dim=-1).requires_grad_()
    k = F.normalize(torch.randn(1, 5, 4, generator=g), dim=-1).requires_grad_()
    patch_nce_loss(q, k).backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    assert k.grad is None
