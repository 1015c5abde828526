"""The semantic robustness loss of SRUNIT (paper Eq. 3, Sec. 5.3) and its ablated forms (App. G).

    L_k = E_x [ || F_k(G^k_1(x)) - F_k(G^k_1(G^{K+1}_k(G^k_1(x) + tau_k))) ||_2 / ||tau_k||_2 ]
    L_robust = (1/K) sum_k L_k

tau_k is drawn independently for every spatial position of the k-th feature map: a direction
uniform on the channel unit sphere times a magnitude uniform in [min_noise, T].

The ablations of App. G change one part each, through options of the same computation:
E3 drops F_k (``RobustnessTerms.project=False``: raw G^k_1 features at the sampled positions),
E4 compares with F_k(G^k_1(G(x))) instead of F_k(G^k_1(x)) (Eq. 4 / L'_k:
``RobustnessTerms.anchor="translation"``), and E5 replaces the ratio by the direct distance
||F_k(G^k_1(x)) - F_k(G^k_1(G(x)))||_2 (L_sc_k: ``semantic_distances``). In all of them x means
image patches: the same sampled positions.

The estimator of E[d(tau) / |tau|] (d the distance above) is heavy-tailed: as tau -> 0, d tends to
d_0 = || F_k(G^k_1(x)) - F_k(G^k_1(G(x))) ||, not to 0, so a position with a tiny |tau| contributes
about d_0 / |tau|. ``estimator="control_variate"`` removes that part exactly in expectation:

    d_0 E[1/|tau|] + (d(tau) - d_0) / |tau|,   E[1/|tau|] = ln(T / min_noise) / (T - min_noise)

has the same expectation (and expected gradient) as d(tau) / |tau| for every x and direction, and
(d(tau) - d_0) / |tau| stays bounded by the local Lipschitz constant. With the public code's noise
(tau = T * direction, divided by the drawn magnitude) d does not depend on the magnitude, so the
control variate is d(T u) E[1/|tau|]: the magnitude's variance is gone entirely. (With Eq. 4's
anchor d_0 is 0 and the estimator is the plain one.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from srunit.networks import PatchProjector, ResnetGenerator, gather_patches, gather_positions, sample_patch_ids
from srunit.nn import at_least_float32


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


def _check_noise(max_noise: float, min_noise: float) -> None:
    """|tau| is drawn from [min_noise, max_noise]: 0 < min_noise <= max_noise, both finite (a negative bound drew
    negative magnitudes, bounds the wrong way round a range below min_noise, without a word)."""
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (max_noise, min_noise))
    if not (numbers and math.isfinite(max_noise) and 0 < min_noise <= max_noise):
        raise ValueError(f"the noise magnitudes need 0 < min_noise <= max_noise, finite; got min_noise "
                         f"{min_noise!r:.40} and max_noise {max_noise!r:.40}")


def sample_feature_noise(h: torch.Tensor, max_noise: float, min_noise: float = 1e-7) -> FeatureNoise:
    """Draw tau_k for a feature map h: (B, C, H, W), on h's device, in float32."""
    _check_noise(max_noise, min_noise)
    b, _, height, width = h.shape
    direction = torch.randn(h.shape, device=h.device)
    direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-12)
    magnitude = min_noise + (max_noise - min_noise) * torch.rand(b, 1, height, width, device=h.device)
    return FeatureNoise(direction, magnitude)


@dataclass(frozen=True)
class RobustnessTerms:
    """How Eq. 3 is evaluated (the options of ``robustness_layer_loss`` and ``robustness_ratios``).

    official_noise: add direction * T (the maximum) but still divide by the drawn magnitude, as
        the public SRUNIT code does; the paper adds and divides by the same tau_k.
    detach_projector: F_k is used as a fixed function (the public code's "v1"): no gradient to F.
    distance_eps: the distance is sqrt(||d||^2 + eps); the public code uses 1e-12.
    project: compare F_k of the features (Eq. 3); False compares the features G^k_1 themselves at
        the sampled positions (App. G, E3: L~_k).
    anchor: what the perturbed translation is compared with: "input" F_k(G^k_1(x)) (Eq. 3), or
        "translation" F_k(G^k_1(G(x))) (Eq. 4, L'_k; App. A and ablation E4).
    estimator: "plain" (d / |tau|, the paper's) or "control_variate" (same expectation, lower
        variance: see the module docstring); the latter needs G^k_1(G(x)).
    """

    num_patches: int = 256
    max_noise: float = 0.1
    min_noise: float = 1e-7
    official_noise: bool = False
    detach_projector: bool = False
    distance_eps: float = 0.0
    project: bool = True
    anchor: Literal["input", "translation"] = "input"
    estimator: Literal["plain", "control_variate"] = "plain"

    def __post_init__(self) -> None:
        # Built by hand (the API), an unknown anchor or estimator was taken as the default without a word.
        if isinstance(self.num_patches, bool) or not isinstance(self.num_patches, int) or self.num_patches < 1:
            raise ValueError(f"RobustnessTerms: num_patches must be an integer >= 1, got {self.num_patches!r:.40}")
        _check_noise(self.max_noise, self.min_noise)
        if self.anchor not in ("input", "translation"):
            raise ValueError(f"RobustnessTerms: anchor must be 'input' or 'translation', got {self.anchor!r:.40}")
        if self.estimator not in ("plain", "control_variate"):
            raise ValueError(f"RobustnessTerms: estimator must be 'plain' or 'control_variate', got "
                             f"{self.estimator!r:.40}")
        if not (math.isfinite(self.distance_eps) and self.distance_eps >= 0):
            raise ValueError(f"RobustnessTerms: distance_eps must be a finite number >= 0, got {self.distance_eps!r}")

    @property
    def mean_inverse_magnitude(self) -> float:
        """E[1/|tau|] for |tau| uniform in [min_noise, max_noise] (1/|tau| when they are equal)."""
        lo, hi = self.min_noise, self.max_noise
        return 1.0 / lo if hi == lo else math.log(hi / lo) / (hi - lo)


def perturb(h: torch.Tensor, noise: FeatureNoise, terms: RobustnessTerms) -> torch.Tensor:
    """G^k_1(x) + tau_k, computed in float32 whatever the dtype of h, so the realised perturbation
    is tau_k up to float32 rounding (a bfloat16 sum would round most of a small tau_k away)."""
    step = noise.direction * terms.max_noise if terms.official_noise else noise.tau
    return at_least_float32(h) + at_least_float32(step)


def _layer_distances(projector: PatchProjector, k: int, a: torch.Tensor, b: torch.Tensor, ids: torch.Tensor,
                     terms: RobustnessTerms) -> torch.Tensor:
    """||F_k(a) - F_k(b)||_2 at each sampled position (||a - b||_2 without ``terms.project``), (B, P) float32.

    a, b: (B, C_k, H_k, W_k) feature maps of layer k; ids: (B, P) positions from `sample_patch_ids`.
    """
    if terms.project:
        a = at_least_float32(projector(k, a, ids, detach_weights=terms.detach_projector))
        b = at_least_float32(projector(k, b, ids, detach_weights=terms.detach_projector))
    else:
        a, b = at_least_float32(gather_patches(a, ids)), at_least_float32(gather_patches(b, ids))
    diff = a - b
    if terms.distance_eps > 0:
        return (diff.square().sum(-1) + terms.distance_eps).sqrt()
    return torch.linalg.vector_norm(diff, dim=-1)  # subgradient 0 where diff == 0


def _layer_ratios(projector: PatchProjector, k: int, h: torch.Tensor, h_moved: torch.Tensor, ids: torch.Tensor,
                  magnitude: torch.Tensor, terms: RobustnessTerms,
                  h_translated: torch.Tensor | None = None) -> torch.Tensor:
    """||F_k(h) - F_k(h_moved)|| / |tau_k| at each sampled position, (B, P) float32 (distances and ratio too),
    or its control-variate form (``terms.estimator``), which needs h_translated = G^k_1(G(x))."""
    distance = _layer_distances(projector, k, h, h_moved, ids, terms)  # (B, P)
    if terms.estimator == "plain" or terms.anchor == "translation":
        return distance / gather_positions(at_least_float32(magnitude), ids)
    if terms.official_noise:  # the distance does not depend on the drawn magnitude
        return distance * terms.mean_inverse_magnitude
    if h_translated is None:
        raise ValueError("the control-variate estimator needs G^k_1(G(x)) (translated_feats)")
    d0 = _layer_distances(projector, k, h, h_translated, ids, terms)
    return d0 * terms.mean_inverse_magnitude + (distance - d0) / gather_positions(at_least_float32(magnitude), ids)


def robustness_layer_loss(
    generator: ResnetGenerator,
    projector: PatchProjector,
    k: int,
    h: torch.Tensor,
    terms: RobustnessTerms = RobustnessTerms(),
    *,
    noise: FeatureNoise | None = None,
) -> torch.Tensor:
    """L_k of Eq. 3 for one feature layer, averaged over the batch and ``terms.num_patches`` positions.

    h: G^k_1(x), (B, C_k, H_k, W_k), with its graph (the gradient reaches G through both sides).
    noise: a pre-drawn tau_k (tests); drawn with `sample_feature_noise` when None.
    The first layer of G^{K+1}_k sees G^k_1(x) + tau_k in float32 (``decode_from(exact_input=True)``).
    """
    noises = None if noise is None else [noise]
    return robustness_ratios(generator, projector, [k], [h], terms, noises=noises)[0].mean()


def robustness_ratios(
    generator: ResnetGenerator,
    projector: PatchProjector,
    layers: Sequence[int],
    feats: Sequence[torch.Tensor],
    terms: RobustnessTerms = RobustnessTerms(),
    *,
    noises: Sequence[FeatureNoise] | None = None,
    translated_feats: Sequence[torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """The per-position ratios of Eq. 3, (B, P) for each k in ``layers`` (L_k is their mean), with the K
    perturbed passes batched.

    feats[i] = G^k_1(x) for k = layers[i]. Instead of one decode and one re-encode per layer, one
    decode pass takes each perturbed copy G^k_1(x) + tau_k into its batch when it reaches layer k
    (``decode_many``) and one re-encode pass lets each translated copy leave the batch at its
    layer (``encode_many``): the same layers run on the same tensors as in ``robustness_layer_loss``
    per layer, in fewer, larger kernels. Noise and patch positions are drawn layer by layer in the
    order of ``layers``, as the per-layer losses draw them, so both give the same values.

    With ``terms.anchor == "translation"`` (Eq. 4) the anchor G^k_1(G(x)) = G^k_1(G^{K+1}_k(G^k_1(x)))
    is an unperturbed copy in the same passes, which then run in float32 outside autocast: Eq. 4
    compares two translations that differ only through tau_k (|tau_k| down to min_noise), a
    difference that rounding in a second code path or in bfloat16 would swamp.
    translated_feats[i] = G^k_1(G(x)) for k = layers[i]: needed by the control-variate estimator only.
    """
    _check_layers("robustness_ratios", len(generator.feature_layers), layers, feats=feats, noises=noises,
                  translated_feats=translated_feats)
    drawn: list[FeatureNoise] = []
    draws: list[torch.Tensor] = []
    for i, h in enumerate(feats):
        drawn.append(sample_feature_noise(h, terms.max_noise, terms.min_noise) if noises is None else noises[i])
        draws.append(sample_patch_ids(h, terms.num_patches))
    order = sorted(range(len(layers)), key=lambda i: generator.feature_layers[layers[i]])
    ks = [layers[i] for i in order]
    sizes = [feats[i].shape[0] for i in order]
    if terms.anchor == "translation":
        with torch.autocast(feats[0].device.type, enabled=False):
            inputs = [torch.cat([perturb(feats[i], drawn[i], terms), at_least_float32(feats[i])]) for i in order]
            both = generator.encode_many(generator.decode_many(ks, inputs, exact_input=True), ks,
                                         [2 * n for n in sizes])
        moved = {i: t[:n] for i, t, n in zip(order, both, sizes)}
        clean = {i: t[n:] for i, t, n in zip(order, both, sizes)}
    else:
        translated = generator.decode_many(ks, [perturb(feats[i], drawn[i], terms) for i in order], exact_input=True)
        moved = dict(zip(order, generator.encode_many(translated, ks, sizes)))
        clean = dict(enumerate(feats))
    return [_layer_ratios(projector, k, clean[i], moved[i], draws[i], drawn[i].magnitude, terms,
                          None if translated_feats is None else translated_feats[i])
            for i, k in enumerate(layers)]


def semantic_distances(
    projector: PatchProjector,
    layers: Sequence[int],
    feats: Sequence[torch.Tensor],
    translated_feats: Sequence[torch.Tensor],
    terms: RobustnessTerms = RobustnessTerms(),
) -> list[torch.Tensor]:
    """The direct semantic consistency of App. G (ablation E5): ||F_k(G^k_1(x)) - F_k(G^k_1(G(x)))||_2 at
    ``terms.num_patches`` positions per image, (B, P) float32 for each k in ``layers`` (L_sc_k is their mean).

    feats[i] = G^k_1(x), translated_feats[i] = G^k_1(G(x)) for k = layers[i], both with graph. No noise:
    the distance of Eq. 3 between the input and its translation, without the perturbation and the ratio.
    """
    _check_layers("semantic_distances", len(projector.mlps), layers, feats=feats, translated_feats=translated_feats)
    return [_layer_distances(projector, k, h, h_out, sample_patch_ids(h, terms.num_patches), terms)
            for k, h, h_out in zip(layers, feats, translated_feats)]


def _check_layers(where: str, num_layers: int, layers: Sequence[int],
                  **per_layer: Sequence[object] | None) -> None:
    """ValueError unless every index of ``layers`` is a feature layer (0 .. num_layers - 1) and each sequence of
    ``per_layer`` holds one item per layer: an index out of range was an IndexError, and `semantic_distances`
    zipped sequences of other lengths into fewer layers, without a word. Python lengths only (no device sync)."""
    bad = [k for k in layers if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < num_layers]
    if bad:
        raise ValueError(f"{where}: layers must be feature-layer indices in 0..{num_layers - 1}, got {list(layers)}")
    for name, items in per_layer.items():
        if items is not None and len(items) != len(layers):
            raise ValueError(f"{where}: {name} must hold one tensor per layer ({len(layers)} for layers "
                             f"{list(layers)}), got {len(items)}")
