"""DistanceGAN's self-distance constraint on the CUT backbone (Benaim & Wolf, NIPS 2017; SRUNIT App. G, E1).

    L_dist(G) = E_x | (||L(x) - R(x)||_1 - mu_X) / sigma_X - (||L(G(x)) - R(G(x))||_1 - mu_Y) / sigma_Y |

L and R give the left and right halves of an image. As in DistanceGAN's code the distance is the
mean absolute difference (the L1 norm divided by the number of elements; the standardised
difference does not depend on that scale), and mu, sigma are the mean and the standard deviation
(over N, not N - 1) of the self-distances of training images of each domain, computed once before
training. App. G prints the bracket without its absolute value; DistanceGAN takes it, and without
it the loss is unbounded below (G could grow its self-distance without limit).
"""

from __future__ import annotations

import torch


def half_distance(images: torch.Tensor) -> torch.Tensor:
    """||L(x) - R(x)||_1 / numel per image: images (B, C, H, W) -> (B,) float32.

    L and R are the W // 2 leftmost and rightmost columns (an odd width leaves the middle column out).
    """
    width = images.shape[-1]
    half = width // 2
    x = images.float()
    return (x[..., :half] - x[..., width - half:]).abs().flatten(1).mean(1)


def self_distance_loss(source: torch.Tensor, translated: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
                       ) -> torch.Tensor:
    """L_dist, averaged over the batch: source x and translated G(x), (B, 3, H, W) in [-1, 1].

    mean, std: (2,) float32, the self-distance statistics (mu_X, mu_Y) and (sigma_X, sigma_Y).
    A horizontal flip of an image leaves its self-distance unchanged, so G(x) may be in the frame
    G saw (FastCUT's flip-equivariance).
    """
    standard_x = (half_distance(source) - mean[0]) / std[0]
    standard_y = (half_distance(translated) - mean[1]) / std[1]
    return (standard_x - standard_y).abs().mean()
