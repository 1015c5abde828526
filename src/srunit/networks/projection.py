"""The patch-sampling feature head F of CUT and SRUNIT ("PatchSampleF" in the public code)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from srunit.nn import at_least_float32, init_weights
from srunit.options import PROJECTOR_NORMS
from srunit.registry import NETWORKS


def sample_patch_ids(feat: torch.Tensor, num_patches: int) -> torch.Tensor:
    """Draw `num_patches` distinct spatial positions per image, on the feature's device.

    feat: (B, C, H, W) -> ids (B, P) int64 in [0, H*W), P = min(num_patches, H*W).
    Each image gets its own positions (the public code shares one set across the batch).
    """
    if isinstance(num_patches, bool) or not isinstance(num_patches, int) or num_patches < 1:
        # 0 drew no position (a PatchNCE of NaN), a negative count was torch's "selected index k out of range"
        raise ValueError(f"sample_patch_ids: num_patches must be an integer >= 1, got {num_patches!r:.40}")
    b, _, h, w = feat.shape
    p = min(num_patches, h * w)
    scores = torch.rand(b, h * w, device=feat.device)
    return scores.topk(p, dim=1, sorted=False).indices


def gather_patches(feat: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """feat (B, C, H, W), ids (B, P) -> feature vectors at those positions (B, P, C)."""
    b, c = feat.shape[:2]
    flat = feat.reshape(b, c, -1)
    return flat.gather(2, ids[:, None, :].expand(b, c, ids.shape[1])).transpose(1, 2)


def gather_positions(values: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """values (B, 1, H, W), ids (B, P) -> (B, P): a per-position scalar at the sampled positions."""
    return values.reshape(values.shape[0], -1).gather(1, ids)



@NETWORKS.register
class PatchProjector(nn.Module):
    """F = {F_k}: per feature layer, Linear(C_k, dim) - ReLU - Linear(dim, dim), then L2-normalise.

    Every MLP is built in the constructor from the generator's `feature_channels`, so all
    parameters exist before the first forward pass (no data-dependent initialisation).
    """

    def __init__(self, in_channels: Sequence[int], dim: int = 256, init_gain: float = 0.02, eps: float = 1e-7,
                 init_type: str = "xavier", normalization: str = "cut") -> None:
        super().__init__()
        if normalization not in PROJECTOR_NORMS:
            raise ValueError(f"normalization must be one of {', '.join(PROJECTOR_NORMS)}, got {normalization!r}")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:  # 0 was a ZeroDivisionError in the init
            raise ValueError(f"PatchProjector: dim must be an integer >= 1 (model.projector_dim), got {dim!r:.40}")
        self.config: dict[str, Any] = dict(in_channels=list(in_channels), dim=dim)
        if normalization != "cut":  # files of the default head keep the metadata they always had
            self.config["normalization"] = normalization
        self.eps = eps
        self.normalization = normalization
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(c, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim)) for c in in_channels
        )
        init_weights(self, init_gain, init_type)

    def forward(self, k: int, feat: torch.Tensor, ids: torch.Tensor, detach_weights: bool = False) -> torch.Tensor:
        """Project the sampled patches of feature map k.

        feat: (B, C_k, H, W); ids: (B, P) from `sample_patch_ids` -> (B, P, dim) float32, unit L2 norm.
        `detach_weights` stops the gradient to F's own parameters (it still flows to `feat`).

        F always computes in float32, outside any autocast region: it sees only P patches per image
        (a few percent of the step's work), and at initialisation its outputs before normalisation
        are around 1e-5, where float16 is subnormal and loses most of its digits.
        """
        with torch.autocast(feat.device.type, enabled=False):
            x = at_least_float32(gather_patches(feat, ids))
            mlp: nn.Sequential = self.mlps[k]  # type: ignore[assignment]  # a ModuleList of Sequentials
            if detach_weights:
                first: nn.Linear = mlp[0]  # type: ignore[assignment]
                last: nn.Linear = mlp[2]  # type: ignore[assignment]
                x = F.relu(F.linear(x, first.weight.detach(), first.bias.detach()))
                x = F.linear(x, last.weight.detach(), last.bias.detach())
            else:
                x = mlp(x)
            if self.normalization == "shifted":
                x = x + 1e-12
                return x / x.norm(dim=-1, keepdim=True)
            return x / (x.norm(dim=-1, keepdim=True) + self.eps)
