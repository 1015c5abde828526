"""PatchNCE, the patch-wise InfoNCE loss of CUT (paper Eq. 2)."""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
import torch.nn.functional as F

from srunit.nn import at_least_float32

Negatives = Literal["image", "batch"]
NEGATIVES: tuple[str, ...] = get_args(Negatives)


def patch_nce_loss(
    query: torch.Tensor, key: torch.Tensor, temperature: float = 0.07, negatives: Negatives = "image"
) -> torch.Tensor:
    """Mean over positions of -log[exp(v.v+/t) / (exp(v.v+/t) + sum_n exp(v.v-_n/t))]  (Eq. 2).

    query: (B, P, D) features of the translated image (v), unit norm.
    key:   (B, P, D) features of the input at the same positions (v+ at the same index, the
           other positions are the negatives v-); treated as constants (no gradient).
    negatives: "image" takes the N = P - 1 other positions of the same image; "batch" takes the
           N = B*P - 1 other positions of the whole minibatch.
    """
    # A temperature of 0 gave NaN, a negative one rewarded the negatives, and mismatched shapes were torch's
    # reshape errors; these checks read Python numbers and shapes only (no device sync).
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"patch_nce_loss: temperature must be a finite number > 0 (tau of Eq. 2; CUT uses 0.07), "
                         f"got {temperature!r:.40}")
    if query.dim() != 3 or query.shape != key.shape or query.shape[1] == 0:
        raise ValueError(f"patch_nce_loss: query and key must be (B, P, D) features of one shape with P >= 1, got "
                         f"{tuple(query.shape)} and {tuple(key.shape)}")
    key = key.detach()
    q, k = at_least_float32(query), at_least_float32(key)
    if negatives == "batch":
        q, k = q.reshape(1, -1, q.shape[-1]), k.reshape(1, -1, k.shape[-1])
    elif negatives != "image":
        raise ValueError(f"unknown negatives mode {negatives!r}; known: image, batch")
    b, n = q.shape[:2]
    # Row i of `sim` holds v.v+ on the diagonal and v.v-_n elsewhere, so Eq. 2 is a
    # cross-entropy whose target for position i is column i.
    sim = torch.bmm(q, k.transpose(1, 2)) / temperature  # (B', n, n)
    target = torch.arange(n, device=sim.device).repeat(b)
    return F.cross_entropy(sim.reshape(b * n, n), target)
