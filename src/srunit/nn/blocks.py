"""Anti-aliased resampling and the residual block of the ResNet generator.

The modules keep the buffer and sub-module names of the public CUT implementation
(`filt`, `conv_block.N`) so that its state dicts load without renaming inside a block.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def reflect_pad(x: torch.Tensor, padding: int | tuple[int, int, int, int]) -> torch.Tensor:
    """Reflection padding that keeps x's dtype: ``padding`` pixels on every side, or (left, right, top, bottom).

    CPU autocast lists reflection padding among the float32 ops, so under bf16 autocast every pad
    would convert a bfloat16 activation to float32 and the next convolution convert it back (both
    directions again for the gradient). Padding only copies values, so it runs outside autocast.
    """
    pad = (padding,) * 4 if isinstance(padding, int) else padding
    with torch.autocast(x.device.type, enabled=False):
        return F.pad(x, pad, mode="reflect")


class ReflectionPad2d(nn.ReflectionPad2d):
    """`nn.ReflectionPad2d` that keeps its input's dtype under autocast (see `reflect_pad`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return reflect_pad(x, self.padding)


def _depthwise(blur: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``blur(x)``, a fixed depthwise filter; on the CPU computed in float32 and returned in x's dtype.

    oneDNN's depthwise (transposed) convolutions take a slow path in bfloat16 on the CPU: 5-20x the
    time of float32 for the forward or the backward pass, more than the two conversions cost. On a
    GPU the filter runs in whatever precision autocast gives it.
    """
    if x.device.type != "cpu":
        return blur(x)
    with torch.autocast("cpu", enabled=False):
        return blur(x.float()).to(x.dtype)


def _binomial(size: int) -> torch.Tensor:
    """Row `size` of Pascal's triangle as float, e.g. [1, 2, 1] for 3, [1, 3, 3, 1] for 4."""
    row = torch.ones(1)
    for _ in range(size - 1):
        row = torch.cat([row, torch.zeros(1)]) + torch.cat([torch.zeros(1), row])
    return row


class BlurDownsample(nn.Module):
    """Blur with a [1,2,1]x[1,2,1]/16 filter, then subsample by 2 (anti-aliased pooling).

    x: (B, C, H, W) -> (B, C, ceil(H/2), ceil(W/2)); reflection padding of 1.
    """

    filt: torch.Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        row = _binomial(3)
        kernel = row[:, None] * row[None, :]
        kernel = kernel / kernel.sum()
        self.register_buffer("filt", kernel[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _depthwise(self._blur, x)

    def _blur(self, x: torch.Tensor) -> torch.Tensor:
        x = reflect_pad(x, 1)
        return F.conv2d(x, self.filt.to(x.dtype), stride=2, groups=x.shape[1])


class BlurUpsample(nn.Module):
    """Up-sample by 2 with a [1,3,3,1]x[1,3,3,1] transposed-conv filter summing to 4.

    x: (B, C, H, W) -> (B, C, 2H, 2W); replication padding of 1, the borders of the result trimmed.
    """

    filt: torch.Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        row = _binomial(4)
        kernel = row[:, None] * row[None, :]
        kernel = kernel / kernel.sum() * 4
        self.register_buffer("filt", kernel[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _depthwise(self._blur, x)

    def _blur(self, x: torch.Tensor) -> torch.Tensor:
        # Replication padding by concatenation: the same values as F.pad(mode="replicate"),
        # whose backward has a broken meta kernel under torch.compile (torch 2.13).
        x = torch.cat([x[:, :, :1], x, x[:, :, -1:]], dim=2)
        x = torch.cat([x[:, :, :, :1], x, x[:, :, :, -1:]], dim=3)
        # (H + 2) padded rows give 2H + 6 full output rows; padding 3 drops three on each side (the
        # same values as padding 2 and a crop of one, without a strided view the next conv must copy).
        return F.conv_transpose2d(x, self.filt.to(x.dtype), stride=2, padding=3, groups=x.shape[1])


class ResnetBlock(nn.Module):
    """x + [reflect-pad, conv3x3, IN, ReLU, reflect-pad, conv3x3, IN](x); channels unchanged."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=True),
            nn.InstanceNorm2d(channels),
            nn.ReLU(inplace=True),
            ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=True),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)
