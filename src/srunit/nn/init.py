"""Weight initialisation: xavier-normal with gain 0.02 (CUT, SRUNIT) or N(0, 0.02) (CycleGAN), zero bias."""

from __future__ import annotations

import math

from torch import nn


def init_weights(module: nn.Module, gain: float = 0.02, init_type: str = "xavier") -> nn.Module:
    """Initialise every Conv/ConvTranspose/Linear weight, bias 0.

    init_type "xavier": xavier-normal(gain); "normal": normal with mean 0 and std `gain`.
    Norm layers carry no affine parameters in these networks; if one does, weight ~ N(1, gain).
    """
    if init_type not in ("xavier", "normal"):
        raise ValueError(f"unknown init_type {init_type!r}; known: xavier, normal")
    if not isinstance(module, nn.Module):
        raise TypeError(f"init_weights: module must be a torch.nn.Module, got {type(module).__name__}")
    number = isinstance(gain, (int, float)) and not isinstance(gain, bool)
    if not (number and math.isfinite(gain) and gain > 0):  # -1 was torch's "normal expects std >= 0.0"
        raise ValueError(f"init_weights: gain must be a finite number > 0 (0.02 is the usual gain), got {gain!r:.40}")
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if init_type == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            else:
                nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return module
