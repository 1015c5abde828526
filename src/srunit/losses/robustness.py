"""The semantic robustness loss of SRUNIT (paper Eq. 3, Sec. 5.3).

    L_k = E_x [ || F_k(G^k_1(x)) - F_k(G^k_1(G^{K+1}_k(G^k_1(x) + tau_k))) ||_2 / ||tau_k||_2 ]
    L_robust = (1/K) sum_k L_k

tau_k is drawn independently for every spatial position of the k-th feature map: a direction
uniform on the channel unit sphere times a magnitude uniform in [min_noise, T].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from srunit.networks import PatchProjector, ResnetGenerator, gather_positions, sample_patch_ids


@dataclass(frozen=True)
class FeatureNoise:
    """tau_k = magnitude * direction for one feature map.

    direction: (B, C, H, W), unit L2 norm over C at every position.
    magnitude: (B, 1, H, W), uniform in [min_noise, max_noise].
    """

    direction: torch.Tensor
    magnitude: torch.Tensor

    @property
    def tau(self) -> torch.Tensor:
        return self.direction * self.magnitude


def sample_feature_noise(h: torch.Tensor, max_noise: float, min_noise: float = 1e-7) -> FeatureNoise:
    """Draw tau_k for a feature map h: (B, C, H, W), on h's device, in float32."""
    b, _, height, width = h.shape
    direction = torch.randn(h.shape, device=h.device)
    direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-12)
    magnitude = min_noise + (max_noise - min_noise) * torch.rand(b, 1, height, width, device=h.device)
    return FeatureNoise(direction, magnitude)


def robustness_layer_loss(
    generator: ResnetGenerator,
    projector: PatchProjector,
    k: int,
    h: torch.Tensor,
    *,
    num_patches: int = 256,
    max_noise: float = 0.1,
    min_noise: float = 1e-7,
    official_noise: bool = False,
    detach_projector: bool = False,
    distance_eps: float = 0.0,
    noise: FeatureNoise | None = None,
) -> torch.Tensor:
    """L_k of Eq. 3 for one feature layer, averaged over the batch and `num_patches` positions.

    h: G^k_1(x), (B, C_k, H_k, W_k), with its graph (the gradient reaches G through both sides).
    official_noise: add direction * T (the maximum) but still divide by the drawn magnitude, as
        the public SRUNIT code does; the paper adds and divides by the same tau_k.
    detach_projector: F_k is used as a fixed function (the public code's "v1"): no gradient to F.
    distance_eps: the distance is sqrt(||d||^2 + eps); the public code uses 1e-12.
    noise: a pre-drawn tau_k (tests); drawn with `sample_feature_noise` when None.
    """
    if noise is None:
        noise = sample_feature_noise(h, max_noise, min_noise)
    step = noise.direction * max_noise if official_noise else noise.tau
    perturbed = generator.decode_from(k, h + step.to(h.dtype))  # G^{K+1}_k(G^k_1(x) + tau_k)
    h_perturbed = generator.encode_layer(perturbed, k)  # G^k_1 of the translated image
    ids = sample_patch_ids(h, num_patches)
    clean = projector(k, h, ids, detach_weights=detach_projector).float()
    moved = projector(k, h_perturbed, ids, detach_weights=detach_projector).float()
    diff = clean - moved
    if distance_eps > 0:
        distance = (diff.square().sum(-1) + distance_eps).sqrt()  # (B, P)
    else:
        distance = torch.linalg.vector_norm(diff, dim=-1)  # subgradient 0 where diff == 0
    return (distance / gather_positions(noise.magnitude, ids)).mean()
