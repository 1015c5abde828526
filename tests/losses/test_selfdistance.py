"""srunit.losses.selfdistance (ablation E1, App. G): half distances and L_dist against loops over pixels."""

from __future__ import annotations

import statistics

import torch

from srunit.losses.selfdistance import half_distance, self_distance_loss


def _half_distance_by_pixels(image: torch.Tensor) -> float:
    """sum over channels, rows and the W // 2 column pairs of |left - right|, over the number of terms."""
    c, h, w = image.shape
    half = w // 2
    total, count = 0.0, 0
    for ch in range(c):
        for row in range(h):
            for col in range(half):
                total += abs(float(image[ch, row, col]) - float(image[ch, row, w - half + col]))
                count += 1
    return total / count


def test_half_distance_compares_the_left_and_right_halves() -> None:
    g = torch.Generator().manual_seed(0)
    for width in (6, 7):  # an odd width leaves the middle column out
        x = torch.rand(3, 3, 4, width, generator=g) * 2 - 1
        got = half_distance(x)
        assert got.shape == (3,) and got.dtype == torch.float32
        for i in range(3):
            assert abs(got[i].item() - _half_distance_by_pixels(x[i])) < 1e-6
    mirrored = torch.rand(1, 3, 4, 3, generator=g)
    mirrored[..., 2] = mirrored[..., 0]
    assert half_distance(mirrored).item() == 0.0  # identical halves
    x = torch.rand(2, 3, 4, 6, generator=g)
    assert torch.allclose(half_distance(x.flip(3)), half_distance(x))  # a mirror image has the same distance


def test_self_distance_loss_is_the_mean_absolute_standardised_difference() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 8, 8, generator=g) * 2 - 1
    y = torch.rand(4, 3, 8, 8, generator=g) * 1.2 - 0.6
    fake = torch.tanh(torch.randn(4, 3, 8, 8, generator=g))
    # Statistics as DistanceGAN computes them: mean and standard deviation over N of each domain.
    dx = [_half_distance_by_pixels(img) for img in x]
    dy = [_half_distance_by_pixels(img) for img in y]
    mu_x, sd_x, mu_y, sd_y = statistics.fmean(dx), statistics.pstdev(dx), statistics.fmean(dy), statistics.pstdev(dy)
    expected = statistics.fmean(
        abs((_half_distance_by_pixels(a) - mu_x) / sd_x - (_half_distance_by_pixels(b) - mu_y) / sd_y)
        for a, b in zip(x, fake)
    )
    got = self_distance_loss(x, fake, torch.tensor([mu_x, mu_y]), torch.tensor([sd_x, sd_y]))
    assert abs(got.item() - expected) < 1e-4 * max(1.0, expected)
    # It pulls the standardised self-distance of G(x) towards that of x: zero when they agree.
    assert self_distance_loss(x, x, torch.tensor([mu_x, mu_x]), torch.tensor([sd_x, sd_x])).item() < 1e-6
