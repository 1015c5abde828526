"""StegoGAN's two generators (Wu et al., CVPR 2024): the ResNet generator with a hiding point.

Both are the CycleGAN ResNet generator (`ResnetGenerator`) with one place in their residual trunk,
``blocks_after_mask`` residual blocks before the up-sampling, where the unmatched content is handled:

- `StegoMaskGenerator` (G_BA, domain B -> domain A) predicts there a *matchability* m in (0, 1) for
  every feature (`MatchabilityNet`), decodes only the matched part h * m, and hands on the rest,
  h * (1 - m): the features of content that has no counterpart in domain A (a class that exists in
  domain B only). Its *unmatchability mask* is M = max over channels of (1 - m), (B, 1, H/4, W/4).
- `StegoGenerator` (G, domain A -> domain B) translates as a plain ResNet generator (`forward`, the
  translation at inference), and can also receive hidden features, added at the same place
  (`forward_hidden`), optionally through a fusion residual block.

With n residual blocks the hiding point follows block n - ``blocks_after_mask``; the public code's
``--resnet_layer r`` is ``blocks_after_mask = n - 1 - r`` (its README trains with r = 8 of 9 blocks:
0 here). The mask is predicted per channel group: ``mask_groups`` G splits the C = 4 ngf trunk
channels into G groups of C / G consecutive channels (0 = one group per channel, the public default
of 256 masks for ngf 64; the public code takes only G = C or G = 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from srunit.checks import check_value
from srunit.networks.generator import DEFAULT_FEATURE_LAYERS, ResnetGenerator
from srunit.nn import ResnetBlock, init_weights
from srunit.registry import NETWORKS

__all__ = ["MatchabilityNet", "StegoGenerator", "StegoMaskGenerator", "StegoSplit", "upsample_mask"]


def upsample_mask(mask: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """The unmatchability mask at image resolution: mask (B, 1, h, w) -> (B, 1, H, W), bilinear with aligned
    corners (the public code's ``Upsample(scale_factor=4, align_corners=True)`` for H = 4h)."""
    return F.interpolate(mask, size=tuple(size), mode="bilinear", align_corners=True)


class MatchabilityNet(nn.Module):
    """h (B, C, h, w) -> m (B, G, h, w) in (0, 1): conv3x3 C->C, IN, ReLU, conv3x3 C->C, IN, ReLU, conv3x3 C->G,
    sigmoid (zero padding 1, biases on), the public code's NetMatchability."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm1 = nn.InstanceNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = nn.InstanceNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, groups, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norm1(self.conv1(h)))
        x = torch.relu(self.norm2(self.conv2(x)))
        return torch.sigmoid(self.conv3(x))


def _trunk_channels(ngf: int) -> int:
    return 4 * ngf  # two stride-2 stages double ngf twice


def _hiding_position(net: ResnetGenerator, blocks_after_mask: int) -> int:
    """Index of the first layer after the hiding point: the layer after residual block n - blocks_after_mask."""
    blocks = [i for i, layer in enumerate(net.layers) if isinstance(layer, ResnetBlock)]
    check_value(0 <= blocks_after_mask <= len(blocks), "method.blocks_after_mask", blocks_after_mask,
                f"an integer from 0 to model.n_blocks ({len(blocks)}): the residual blocks after the hiding point")
    return blocks[0] + len(blocks) - blocks_after_mask


@NETWORKS.register
class StegoGenerator(ResnetGenerator):
    """G of StegoGAN, domain A -> domain B (the public ResnetMaskV1Generator).

    ``forward(x)``: x (B, 3, H, W) in [-1, 1] -> (B, 3, H, W) in [-1, 1], the translation without hidden
    features (the public ``fake_B_clean``; what srunit translate and export use).
    ``forward_hidden(x, hidden)``: the same with ``hidden`` (B, 4 ngf, H/4, W/4) added at the hiding point,
    through the fusion residual block when ``fusion`` is on.
    """

    compiled_methods = (*ResnetGenerator.compiled_methods, "forward_hidden")  # type: ignore[assignment]

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_blocks: int = 9,
                 antialias: bool = False, antialias_up: bool = False,
                 feature_layers: Sequence[int] = DEFAULT_FEATURE_LAYERS, init_gain: float = 0.02,
                 init_type: str = "normal", blocks_after_mask: int = 0, fusion: bool = False) -> None:
        super().__init__(in_channels, out_channels, ngf, n_blocks, antialias, antialias_up, feature_layers,
                         init_gain, init_type)
        self.hiding_position = _hiding_position(self, blocks_after_mask)
        self.config.update(blocks_after_mask=blocks_after_mask, fusion=fusion)
        self.fusion = ResnetBlock(_trunk_channels(ngf)) if fusion else None
        if self.fusion is not None:
            init_weights(self.fusion, init_gain, init_type)

    def forward_hidden(self, x: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W), hidden (B, 4 ngf, H/4, W/4) -> G(x) with ``hidden`` added at the hiding point."""
        h = self._run(x, 0, self.hiding_position)
        h = h + (self.fusion(hidden) if self.fusion is not None else hidden)
        return self._run(h, self.hiding_position, len(self.layers))


@dataclass
class StegoSplit:
    """What G_BA makes of domain-B images y: its translation, the hidden features and the mask."""

    image: torch.Tensor  # (B, 3, H, W) in [-1, 1]: G_BA(y), decoded from the matched features h * m
    hidden: torch.Tensor  # (B, 4 ngf, H/4, W/4): h * (1 - m), the features held back
    mask: torch.Tensor  # (B, 1, H/4, W/4) in (0, 1): M = max over channels of (1 - m); 1 = unmatched


@NETWORKS.register
class StegoMaskGenerator(ResnetGenerator):
    """G_BA of StegoGAN, domain B -> domain A (the public ResnetMaskV3Generator).

    ``split(y)``: y (B, 3, H, W) in [-1, 1] -> `StegoSplit`. ``forward(y)``: its image alone (a translator:
    srunit translate --direction BtoA uses it). ``unmatched_mask(y)``: its mask at image resolution.
    """

    compiled_methods = (*ResnetGenerator.compiled_methods, "split")  # type: ignore[assignment]

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_blocks: int = 9,
                 antialias: bool = False, antialias_up: bool = False,
                 feature_layers: Sequence[int] = DEFAULT_FEATURE_LAYERS, init_gain: float = 0.02,
                 init_type: str = "normal", blocks_after_mask: int = 0, mask_groups: int = 0) -> None:
        super().__init__(in_channels, out_channels, ngf, n_blocks, antialias, antialias_up, feature_layers,
                         init_gain, init_type)
        channels = _trunk_channels(ngf)
        groups = mask_groups or channels
        check_value(mask_groups >= 0 and channels % groups == 0, "method.mask_groups", mask_groups,
                    f"0 (one mask per channel) or a divisor of the {channels} trunk channels (4 model.ngf)")
        self.hiding_position = _hiding_position(self, blocks_after_mask)
        self.config.update(blocks_after_mask=blocks_after_mask, mask_groups=mask_groups)
        self.group_size = channels // groups
        self.mask = init_weights(MatchabilityNet(channels, groups), init_gain, init_type)

    def _matchability(self, h: torch.Tensor) -> torch.Tensor:
        """(B, G, h, w) -> (B, C, h, w): each group's m on its C / G consecutive channels."""
        m = self.mask(h)
        return m if self.group_size == 1 else m.repeat_interleave(self.group_size, dim=1)

    def split(self, y: torch.Tensor) -> StegoSplit:
        h = self._run(y, 0, self.hiding_position)
        m = self.mask(h)
        unmatched = (1 - m).amax(dim=1, keepdim=True)  # the max over the expanded channels equals this
        if self.group_size > 1:
            m = m.repeat_interleave(self.group_size, dim=1)
        image = self._run(h * m, self.hiding_position, len(self.layers))
        return StegoSplit(image, h * (1 - m), unmatched)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        h = self._run(y, 0, self.hiding_position)
        return self._run(h * self._matchability(h), self.hiding_position, len(self.layers))

    @torch.no_grad()
    def unmatched_mask(self, y: torch.Tensor) -> torch.Tensor:
        """y (B, 3, H, W) in [-1, 1], H and W multiples of 4 -> (B, 1, H, W) in [0, 1]: the unmatchability mask
        of domain-B images at their resolution (1: content G_BA holds back as having no counterpart in A)."""
        h = self._run(y, 0, self.hiding_position)
        return upsample_mask((1 - self.mask(h)).amax(dim=1, keepdim=True), y.shape[-2:]).clamp(0, 1)

    def extra_repr(self) -> str:
        return f"hiding after layer {self.hiding_position - 1}, mask groups of {self.group_size} channel(s)"

