"""Ablation E2 of SRUNIT (App. G): a HarmonicGAN-style patch smoothness constraint as a term of CUT.

See losses/smoothness.py for L_smooth and the choices App. G leaves open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from srunit.checks import check_value
from srunit.errors import ConfigError
from srunit.losses.smoothness import sample_patch_corners, smoothness_loss
from srunit.methods.base import Logs, StepContext, flip_where
from srunit.methods.terms.base import FeatureNetworks, FeatureState, RegularizerOptions, Term
from srunit.options import MAX_PATCHES, MAX_WIDTH, option
from srunit.registry import TERMS

__all__ = ["SmoothnessOptions", "Smoothness"]


@dataclass(frozen=True)
class SmoothnessOptions(RegularizerOptions):
    """weight * L_smooth over ``num_patches`` / 2 pairs of patches per image."""

    section: ClassVar[str] = "smooth"
    num_patches: int = option(256, "patches per image, paired into num_patches / 2 pairs (App. G: 256 -> 128)")
    patch_size: int = option(16, "side of a square patch in pixels")
    bins: int = option(16, "histogram bins per colour channel")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_value(2 <= self.num_patches <= MAX_PATCHES and self.num_patches % 2 == 0, "method.smooth.num_patches",
                    self.num_patches, f"an even integer from 2 to {MAX_PATCHES} (patches form pairs)")
        check_value(1 <= self.patch_size <= MAX_WIDTH, "method.smooth.patch_size", self.patch_size,
                    f"an integer from 1 to {MAX_WIDTH}")
        check_value(2 <= self.bins <= 256, "method.smooth.bins", self.bins, "an integer from 2 to 256 (8-bit colour)")


@TERMS.register
class Smoothness(Term):
    """weight * L_smooth (losses/smoothness.py) added to G and F's loss (``method.smooth``)."""

    Options = SmoothnessOptions
    summary = "ablation E2: HarmonicGAN-style patch smoothness, on G"
    phase = "G"
    options: SmoothnessOptions

    def loss(self, method: FeatureNetworks, state: FeatureState, ctx: StepContext, logs: Logs) -> torch.Tensor:
        o = self.options
        height, width = state.real_a.shape[-2:]
        if o.patch_size > min(height, width):
            raise ConfigError(f"method.smooth.patch_size {o.patch_size} does not fit into the {height}x{width} "
                              f"training images; use method.smooth.patch_size "
                              f"{min(height, width) - (height == width)} or less")
        if o.patch_size == height == width:
            # one position only: every patch is the whole image, each pair is equal and the term is 0
            raise ConfigError(f"method.smooth.patch_size {o.patch_size} is the whole {height}x{width} training "
                              f"image: every patch is the image itself, so each pair of patches is equal and the "
                              f"term is 0 without a gradient; use method.smooth.patch_size {height - 1} or less")
        n = state.batch_a
        fake = flip_where(state.fake_b, None if state.flip is None else state.flip[:n])  # G(x) in x's frame
        corners = sample_patch_corners(state.real_a, o.num_patches, o.patch_size)
        loss = smoothness_loss(state.real_a, fake, corners, o.patch_size, o.bins)
        logs["smooth"] = loss.detach()
        return o.weight * loss
