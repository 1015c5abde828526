"""srunit.losses.lipschitz (ablation E6, App. G): gradient norms of D's mean logit, analytically and by loops."""

from __future__ import annotations

import math

import pytest
import torch

from srunit.losses.lipschitz import lipschitz_penalty, mean_logit_gradient_norms
from srunit.networks import PatchDiscriminator


def test_a_linear_patch_critic_has_the_analytic_gradient_norm() -> None:
    """D = a 1x1 convolution w: the mean logit over H*W positions has gradient w_c / (H W) at every
    pixel, so its norm is ||w|| / sqrt(H W), whatever the image."""
    d = torch.nn.Conv2d(3, 1, 1)
    with torch.no_grad():
        d.weight.copy_(torch.tensor([1.0, -2.0, 2.0]).view(1, 3, 1, 1))
    x = torch.randn(4, 3, 5, 6)
    norms = mean_logit_gradient_norms(d, x)
    assert norms.shape == (4,) and norms.dtype == torch.float32
    assert torch.allclose(norms, torch.full((4,), 3.0 / math.sqrt(30)), rtol=1e-6)
    assert lipschitz_penalty(d, x[:2], x[2:]).item() == pytest.approx(2 * 3.0 / math.sqrt(30), rel=1e-6)


def test_patch_discriminator_norms_match_one_image_at_a_time_and_ignore_autocast() -> None:
    torch.manual_seed(0)
    d = PatchDiscriminator(ndf=4)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    norms = mean_logit_gradient_norms(d, x)
    for i in range(3):
        xi = x[i:i + 1].clone().requires_grad_(True)
        out = d(xi)
        (grad,) = torch.autograd.grad(out.sum() / out.numel(), xi)
        assert norms[i].item() == pytest.approx(grad.norm().item(), rel=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = mean_logit_gradient_norms(d, x.bfloat16())
    assert low.dtype == torch.float32
    assert torch.allclose(low, mean_logit_gradient_norms(d, x.bfloat16().float()), rtol=1e-6)
    # With graph: the norms can be minimised over D's parameters.
    (weight_grad,) = torch.autograd.grad(norms.sum(), d.layers[0].weight)
    assert weight_grad.abs().sum() > 0
