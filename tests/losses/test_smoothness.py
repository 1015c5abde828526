"""srunit.losses.smoothness (ablation E2, App. G): patches, soft histograms and L_smooth against loops."""

from __future__ import annotations

import math

import pytest
import torch

from srunit.losses.smoothness import extract_patches, sample_patch_corners, smoothness_loss, soft_histogram


def _histogram_by_pixels(patch: torch.Tensor, bins: int) -> list[list[float]]:
    """Linear interpolation between the two neighbouring bin centres, per channel, normalised to sum 1."""
    c = patch.shape[0]
    spacing = 2.0 / (bins - 1)
    out = []
    for ch in range(c):
        hist = [0.0] * bins
        values = [min(max(float(v), -1.0), 1.0) for v in patch[ch].flatten()]
        for v in values:
            position = (v + 1.0) / spacing
            low = min(int(math.floor(position)), bins - 2)
            frac = position - low
            hist[low] += 1.0 - frac
            hist[low + 1] += frac
        out.append([h / len(values) for h in hist])
    return out


def _l1(a: list[list[float]], b: list[list[float]]) -> float:
    return sum(abs(p - q) for ra, rb in zip(a, b) for p, q in zip(ra, rb))


def test_patches_are_the_windows_at_their_corners() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 11)
    corners = sample_patch_corners(x, 50, 4)
    assert corners.shape == (2, 50, 2) and corners.dtype == torch.int64
    assert corners[..., 0].min() >= 0 and corners[..., 0].max() <= 9 - 4
    assert corners[..., 1].min() >= 0 and corners[..., 1].max() <= 11 - 4
    patches = extract_patches(x, corners, 4)
    assert patches.shape == (2, 50, 3, 4, 4)
    for b in range(2):
        for n in range(50):
            r, c = corners[b, n].tolist()
            assert torch.equal(patches[b, n], x[b, :, r:r + 4, c:c + 4])
    with pytest.raises(ValueError, match="do not fit"):
        sample_patch_corners(x, 2, 10)


def test_soft_histogram_matches_linear_binning() -> None:
    g = torch.Generator().manual_seed(2)
    patches = torch.rand(1, 2, 3, 4, 4, generator=g) * 2.2 - 1.1  # a few values outside [-1, 1] are clipped
    patches[0, 0, 0, 0, :3] = torch.tensor([-1.0, 1.0, 0.0])  # the end points and a centre
    hist = soft_histogram(patches, 5)
    assert hist.shape == (1, 2, 3, 5)
    for n in range(2):
        expected = _histogram_by_pixels(patches[0, n], 5)
        assert torch.allclose(hist[0, n], torch.tensor(expected), atol=1e-6)
    assert torch.allclose(hist.sum(-1), torch.ones(1, 2, 3))


def test_smoothness_loss_matches_pairs_of_patches() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1
    fake = torch.tanh(torch.randn(2, 3, 8, 8, generator=g) * 2)
    torch.manual_seed(4)
    corners = sample_patch_corners(x, 6, 3)
    got = smoothness_loss(x, fake, corners, 3, bins=4)
    terms = []
    for b in range(2):
        for pair in range(3):
            (r1, c1), (r2, c2) = corners[b, 2 * pair].tolist(), corners[b, 2 * pair + 1].tolist()

            def hist(img: torch.Tensor, r: int, c: int) -> list[list[float]]:
                return _histogram_by_pixels(img[b, :, r:r + 3, c:c + 3], 4)  # noqa: B023 - called in this iteration

            d_x = _l1(hist(x, r1, c1), hist(x, r2, c2))
            d_fake = _l1(hist(fake, r1, c1), hist(fake, r2, c2))
            terms.append(abs(d_x - d_fake))
    assert abs(got.item() - sum(terms) / len(terms)) < 1e-5


def test_smoothness_loss_is_differentiable_in_the_translation() -> None:
    g = torch.Generator().manual_seed(5)
    x = torch.rand(1, 3, 8, 8, generator=g) * 2 - 1
    fake = (torch.rand(1, 3, 8, 8, generator=g) * 1.8 - 0.9).requires_grad_(True)
    corners = torch.tensor([[[0, 0], [4, 4], [1, 3], [3, 1]]])
    loss = smoothness_loss(x, fake, corners, 4, bins=5)
    (grad,) = torch.autograd.grad(loss, fake)
    assert grad.abs().sum() > 0
    # Piecewise linear in each pixel: a central difference agrees away from the kinks.
    eps = 1e-3
    for index in [(0, 0, 1, 1), (0, 2, 5, 6), (0, 1, 3, 3)]:
        plus, minus = fake.detach().clone(), fake.detach().clone()
        plus[index] += eps
        minus[index] -= eps
        numeric = (smoothness_loss(x, plus, corners, 4, 5) - smoothness_loss(x, minus, corners, 4, 5)) / (2 * eps)
        assert abs(numeric.item() - grad[index].item()) < 1e-2 * max(1.0, abs(grad[index].item()))
