"""PatchGAN discriminator (70x70 receptive field for 3 layers), anti-aliased by default."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from srunit.nn import BlurDownsample, init_weights
from srunit.registry import NETWORKS


@NETWORKS.register
class PatchDiscriminator(nn.Module):
    """x: (B, in_channels, H, W) -> logits (B, 1, H', W'); 30x30 for a 256x256 input, 3 layers.

    Layout matches the public CUT code (`model.N` -> `layers.N`): 4x4 convs with padding 1,
    LeakyReLU 0.2, instance norm on every conv but the first and last, and a blur-pool after each
    of the first `n_layers` convs (or stride-2 convs when `antialias` is off).
    """

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        antialias: bool = True,
        init_gain: float = 0.02,
        init_type: str = "xavier",
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = dict(in_channels=in_channels, ndf=ndf, n_layers=n_layers, antialias=antialias)
        stride = 1 if antialias else 2
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=stride, padding=1), nn.LeakyReLU(0.2, True)]
        if antialias:
            layers.append(BlurDownsample(ndf))
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1),
                nn.InstanceNorm2d(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
            if antialias:
                layers.append(BlurDownsample(ndf * mult))
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1),
            nn.InstanceNorm2d(ndf * mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1),
        ]
        self.layers = nn.Sequential(*layers)
        init_weights(self, init_gain, init_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
