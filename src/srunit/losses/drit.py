"""DRIT's loss terms (Lee et al., ECCV 2018, Sec. 3) as its public code computes them.

Adversarial terms are binary cross-entropies of sigmoid(logit) against a constant target, averaged
over the logits of a map and summed over the maps of a multi-scale discriminator. They are computed
from the logits (``binary_cross_entropy_with_logits``): the same values without the public code's
clamping of log(0) to -100, and safe under autocast. Every term computes in float32 whatever the
autocast precision, and in float64 for float64 inputs (the parity harness's exact-arithmetic runs).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from srunit.nn import at_least_float32

__all__ = ["bce_to", "discriminator_bce", "kl_to_standard_normal", "latent_l1", "mode_seeking_loss"]

# The public code's guard against a zero distance in the mode seeking term.
MODE_SEEKING_EPS = 1e-5


def bce_to(logits: torch.Tensor | Sequence[torch.Tensor], target: float) -> torch.Tensor:
    """sum over maps of mean BCE(sigmoid(logits), target); one map or a discriminator's list of maps.

    Target 1 is the non-saturating generator loss, 0.5 the content encoders' loss against the
    content discriminator (its minimum is log 2, reached when D cannot tell the domains apart).
    """
    maps = [logits] if torch.is_tensor(logits) else list(logits)
    total = torch.zeros((), device=maps[0].device)
    for m in maps:
        m = at_least_float32(m)
        total = total + F.binary_cross_entropy_with_logits(m, torch.full_like(m, target))
    return total


def discriminator_bce(real: torch.Tensor | Sequence[torch.Tensor], fake: torch.Tensor | Sequence[torch.Tensor]
                      ) -> torch.Tensor:
    """A discriminator's loss: BCE(real, 1) + BCE(fake, 0), each summed over the maps (no 1/2)."""
    return bce_to(real, 1.0) + bce_to(fake, 0.0)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) = -1/2 sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j)), summed over
    the nz dimensions and averaged over the images. mu, logvar: (B, nz).

    The public code sums over its one encoded image; over a batch the mean keeps the weight per image.
    """
    mu, logvar = at_least_float32(mu), at_least_float32(logvar)
    return -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(1).mean()


def latent_l1(mu: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Latent regression: mean |E^a(G(z_c, z)) - z| over images and dimensions; mu, z: (B, nz)."""
    return (at_least_float32(mu) - at_least_float32(z)).abs().mean()


def mode_seeking_loss(out_1: torch.Tensor, out_2: torch.Tensor, z_1: torch.Tensor, z_2: torch.Tensor
                      ) -> torch.Tensor:
    """Mode seeking (Mao et al., CVPR 2019, as DRIT's public code adds it): 1 / (d_I / d_z + 1e-5) with
    d_I = mean |out_2 - out_1| over the images G made from the codes z_1, z_2 and d_z = mean |z_2 - z_1|.
    Small when different codes give different images."""
    ratio = ((at_least_float32(out_2) - at_least_float32(out_1)).abs().mean()
             / (at_least_float32(z_2) - at_least_float32(z_1)).abs().mean())
    return 1.0 / (ratio + MODE_SEEKING_EPS)
