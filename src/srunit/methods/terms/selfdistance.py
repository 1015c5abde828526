"""Ablation E1 of SRUNIT (App. G): DistanceGAN's self-distance constraint as a term of CUT.

The statistics mu and sigma of the self-distances of each domain are computed once before training
(`prepare`) from the first ``stats_images`` training images of each domain, as DistanceGAN's code
estimates them from at most 900 images, and kept as buffers of the `stats` network, so every
checkpoint carries them and a resumed run does not recompute them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from srunit.checks import check_value
from srunit.errors import ConfigError
from srunit.losses.selfdistance import half_distance, self_distance_loss
from srunit.methods.base import Logs, StepContext
from srunit.methods.terms.base import FeatureNetworks, FeatureState, RegularizerOptions, Term
from srunit.networks.statistics import SelfDistanceStatistics
from srunit.options import MAX_STAT_IMAGES, option
from srunit.registry import TERMS

__all__ = ["SelfDistanceOptions", "SelfDistance"]


@dataclass(frozen=True)
class SelfDistanceOptions(RegularizerOptions):
    """weight * L_dist; weight 1 is DistanceGAN's default (lambda_distance_A)."""

    section: ClassVar[str] = "distance"
    stats_images: int = option(900, "images per domain for mu and sigma (DistanceGAN's max_items)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_value(2 <= self.stats_images <= MAX_STAT_IMAGES, "method.distance.stats_images", self.stats_images,
                    f"an integer from 2 to {MAX_STAT_IMAGES:,}")


@TERMS.register
class SelfDistance(Term):
    """weight * L_dist (losses/selfdistance.py) added to G and F's loss (``method.distance``)."""

    Options = SelfDistanceOptions
    summary = "ablation E1: DistanceGAN's self-distance, on G"
    phase = "G"
    options: SelfDistanceOptions

    def __init__(self, options: SelfDistanceOptions, method: FeatureNetworks) -> None:
        super().__init__(options, method)
        self.stats = SelfDistanceStatistics()

    def modules(self) -> dict[str, nn.Module]:
        return {"stats": self.stats}

    def prepare(self, method: FeatureNetworks, batches: Iterator[dict[str, torch.Tensor]]) -> None:
        want = self.options.stats_images
        seen: dict[str, list[torch.Tensor]] = {"A": [], "B": []}
        counts = {"A": 0, "B": 0}
        for batch in batches:
            for domain in seen:
                if counts[domain] < want:
                    d = half_distance(batch[domain])[: want - counts[domain]]
                    seen[domain].append(d)
                    counts[domain] += d.numel()
            if min(counts.values()) >= want:
                break
        d_x, d_y = (torch.cat(seen[k]) if seen[k] else torch.zeros(0) for k in ("A", "B"))
        for domain, d in (("A", d_x), ("B", d_y)):
            # One host sync, before training: a spread of zero would divide by zero in every step.
            if d.numel() < 2 or not bool(d.std(correction=0) > 0):
                raise ConfigError(
                    f"method.distance: the self-distances of domain {domain} over {d.numel()} training image(s) "
                    f"have no spread, so they cannot be standardised; train on a data set with at least two "
                    f"different images per domain (method.distance.stats_images is {self.options.stats_images})")
        self.stats.set(d_x, d_y)

    def loss(self, method: FeatureNetworks, state: FeatureState, ctx: StepContext, logs: Logs) -> torch.Tensor:
        o = self.options
        if not self.stats.ready:
            raise RuntimeError("method.distance: the self-distance statistics are not computed; call "
                               "method.prepare(batches) before training (the Trainer does)")
        loss = self_distance_loss(state.real_a, state.fake_b, self.stats.mean, self.stats.std)
        logs["distance"] = loss.detach()
        return o.weight * loss
