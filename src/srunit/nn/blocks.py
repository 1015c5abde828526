"""Anti-aliased resampling and the residual block of the ResNet generator.

The modules keep the buffer and sub-module names of the public CUT implementation
(`filt`, `conv_block.N`) so that its state dicts load without renaming inside a block.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def reflect_pad(x: torch.Tensor, padding: int | tuple[int, int, int, int]) -> torch.Tensor:
    """Reflection padding that keeps x's dtype: ``padding`` pixels on every side, or (left, right, top, bottom).

    CPU autocast lists reflection padding among the float32 ops, so under bf16 autocast every pad
    would convert a bfloat16 activation to float32 and the next convolution convert it back (both
    directions again for the gradient). Padding only copies values, so it runs outside autocast.
    """
    pad = (padding,) * 4 if isinstance(padding, int) else tuple(padding)
    with torch.autocast(x.device.type, enabled=False):
        if torch.is_grad_enabled() and x.requires_grad:
            return _ReflectPad.apply(x, pad)
        return F.pad(x, pad, mode="reflect")


class _ReflectPad(torch.autograd.Function):
    """Reflection padding whose backward pass folds the padded rows and columns of the gradient back;
    autograd's own keeps the input alive for the backward pass, for its shape only."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
        ctx.pad = pad
        return F.pad(x, pad, mode="reflect")

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        return _fold_pad(grad, "reflect", ctx.pad), None


class ReflectionPad2d(nn.ReflectionPad2d):
    """`nn.ReflectionPad2d` that keeps its input's dtype under autocast (see `reflect_pad`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return reflect_pad(x, self.padding)


def _in_float32_on_cpu(fn: Callable[..., torch.Tensor], x: torch.Tensor, *args: Any) -> torch.Tensor:
    """``fn(x, *args)``; on the CPU outside autocast, bfloat16 and float16 computed in float32 and
    returned in x's dtype.

    oneDNN's depthwise (transposed) convolutions take a slow path in bfloat16 on the CPU: 3-12x the
    time of float32 for the forward or the backward pass (measured at a 128x128 CUT step's shapes),
    more than the two conversions cost. On a GPU the filter runs in x's precision.
    """
    if x.device.type != "cpu":
        return fn(x, *args)
    with torch.autocast("cpu", enabled=False):
        if x.dtype in (torch.bfloat16, torch.float16):
            return fn(x.float(), *args).to(x.dtype)
        return fn(x, *args)


def _fold_pad(g: torch.Tensor, mode: str, pad: tuple[int, int, int, int] = (1, 1, 1, 1)) -> torch.Tensor:
    """The adjoint of padding H and W ("reflect" or "replicate") by ``pad`` = (left, right, top, bottom):
    g (B, C, H+top+bottom, W+left+right) -> (B, C, H, W), each padded row and column added onto
    the row or column it copies."""
    for dim, (before, after) in ((2, pad[2:]), (3, pad[:2])):
        n = g.shape[dim] - before - after
        inner = g.narrow(dim, before, n).clone()
        for i in range(before):
            inner.select(dim, before - i if mode == "reflect" else 0).add_(g.select(dim, i))
        for i in range(after):
            inner.select(dim, n - 2 - i if mode == "reflect" else n - 1).add_(g.select(dim, before + n + i))
        g = inner
    return g


def _blur_down(x: torch.Tensor, filt: torch.Tensor) -> torch.Tensor:
    x = reflect_pad(x, 1)
    return F.conv2d(x, filt.to(x.dtype), stride=2, groups=x.shape[1])


def _blur_down_adjoint(g: torch.Tensor, filt: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    # The padded input has H + 2 rows; the transposed conv gives 2 * ceil(H/2) + 1 without output_padding.
    extra = tuple(n + 1 - 2 * m for n, m in zip(size, g.shape[-2:]))
    padded = F.conv_transpose2d(g, filt.to(g.dtype), stride=2, groups=g.shape[1], output_padding=extra)
    return _fold_pad(padded, "reflect")


def _blur_up(x: torch.Tensor, filt: torch.Tensor) -> torch.Tensor:
    # Replication padding by concatenation: the same values as F.pad(mode="replicate"),
    # whose backward has a broken meta kernel under torch.compile (torch 2.13).
    x = torch.cat([x[:, :, :1], x, x[:, :, -1:]], dim=2)
    x = torch.cat([x[:, :, :, :1], x, x[:, :, :, -1:]], dim=3)
    # (H + 2) padded rows give 2H + 6 full output rows; padding 3 drops three on each side (the
    # same values as padding 2 and a crop of one, without a strided view the next conv must copy).
    return F.conv_transpose2d(x, filt.to(x.dtype), stride=2, padding=3, groups=x.shape[1])


def _blur_up_adjoint(g: torch.Tensor, filt: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return _fold_pad(F.conv2d(g, filt.to(g.dtype), stride=2, padding=3, groups=g.shape[1]), "replicate")


class _FixedFilter(torch.autograd.Function):
    """A fixed linear filter whose backward pass applies its adjoint to the gradient.

    Autograd would keep the filter's (padded, float32 on the CPU) input for the backward pass of its
    convolution, although a constant filter's input gradient does not need it; this keeps nothing
    but the input's size. The backward pass is built from differentiable ops, so double backward
    (ablation E6's gradient penalty through D) works.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, filt: torch.Tensor, apply: Callable[..., torch.Tensor],
                adjoint: Callable[..., torch.Tensor]) -> torch.Tensor:
        ctx.save_for_backward(filt)
        ctx.adjoint, ctx.size = adjoint, (x.shape[-2], x.shape[-1])
        return _in_float32_on_cpu(apply, x, filt)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (filt,) = ctx.saved_tensors
        return _in_float32_on_cpu(ctx.adjoint, grad, filt, ctx.size), None, None, None


def _filter(x: torch.Tensor, filt: torch.Tensor, apply: Callable[..., torch.Tensor],
            adjoint: Callable[..., torch.Tensor]) -> torch.Tensor:
    if torch.is_grad_enabled() and x.requires_grad:
        return _FixedFilter.apply(x, filt, apply, adjoint)
    return _in_float32_on_cpu(apply, x, filt)


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
        return _filter(x, self.filt, _blur_down, _blur_down_adjoint)


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
        return _filter(x, self.filt, _blur_up, _blur_up_adjoint)


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
