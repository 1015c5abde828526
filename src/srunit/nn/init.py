"""Weight initialisation used by CUT and SRUNIT: xavier-normal with gain 0.02, zero bias."""

from __future__ import annotations

from torch import nn


def init_weights(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """Initialise every Conv/ConvTranspose/Linear weight with xavier-normal(gain), bias 0.

    Norm layers carry no affine parameters in these networks; if one does, weight ~ N(1, gain).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_normal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return module
