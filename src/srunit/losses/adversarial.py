"""GAN objectives on discriminator logits of any shape (PatchGAN maps included)."""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F

from srunit.nn import at_least_float32

GanMode = Literal["lsgan", "vanilla", "hinge"]
GAN_MODES: tuple[str, ...] = get_args(GanMode)


def discriminator_loss(mode: GanMode, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """0.5 * (loss on real logits + loss on fake logits), as in CUT.

    lsgan: (D(y) - 1)^2 + D(G(x))^2; vanilla: -log s(D(y)) - log(1 - s(D(G(x))));
    hinge: relu(1 - D(y)) + relu(1 + D(G(x))). Means over all logits.
    """
    real, fake = at_least_float32(real), at_least_float32(fake)
    if mode == "lsgan":
        real_term, fake_term = (real - 1).square().mean(), fake.square().mean()
    elif mode == "vanilla":
        real_term, fake_term = F.softplus(-real).mean(), F.softplus(fake).mean()
    elif mode == "hinge":
        real_term, fake_term = F.relu(1 - real).mean(), F.relu(1 + fake).mean()
    else:
        raise ValueError(f"unknown GAN mode {mode!r}; known: {', '.join(GAN_MODES)}")
    return 0.5 * (real_term + fake_term)


def generator_loss(mode: GanMode, fake: torch.Tensor) -> torch.Tensor:
    """Generator side: lsgan (D(G(x)) - 1)^2; vanilla -log s(D(G(x))) (non-saturating); hinge -D(G(x))."""
    fake = at_least_float32(fake)
    if mode == "lsgan":
        return (fake - 1).square().mean()
    if mode == "vanilla":
        return F.softplus(-fake).mean()
    if mode == "hinge":
        return -fake.mean()
    raise ValueError(f"unknown GAN mode {mode!r}; known: {', '.join(GAN_MODES)}")
