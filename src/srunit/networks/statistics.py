"""Networks that hold statistics of the data rather than weights, so that checkpoints carry them."""

from __future__ import annotations

import torch
from torch import nn

from srunit.registry import NETWORKS

__all__ = ["SelfDistanceStatistics"]


@NETWORKS.register
class SelfDistanceStatistics(nn.Module):
    """Buffers: the mean and standard deviation of the self-distances of domains X and Y, (2,) each,
    and the number of images each was computed from; NaN and 0 until `set` (or a checkpoint) fills them.
    DistanceGAN's statistics (ablation E1, `srunit.methods.terms.selfdistance`)."""

    mean: torch.Tensor
    std: torch.Tensor
    images: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.full((2,), float("nan")))
        self.register_buffer("std", torch.full((2,), float("nan")))
        self.register_buffer("images", torch.zeros(2, dtype=torch.int64))
        self.ready = False  # host-side: set by `set` and by loading a state dict
        self.register_load_state_dict_post_hook(lambda module, _keys: setattr(module, "ready", True))

    def set(self, distances_x: torch.Tensor, distances_y: torch.Tensor) -> None:
        """Store the statistics of (N,) self-distances per domain (std over N, as DistanceGAN)."""
        for i, d in enumerate((distances_x, distances_y)):
            self.mean[i] = d.mean()
            self.std[i] = d.std(correction=0)
            self.images[i] = d.numel()
        self.ready = True
