"""Ablation E1 of SRUNIT (App. G): CUT plus DistanceGAN's self-distance constraint.

The statistics mu and sigma of the self-distances of each domain are computed once before training
(`prepare`) from the first ``stats_images`` training images of each domain, as DistanceGAN's code
estimates them from at most 900 images, and kept as buffers of the `stats` module, so every
checkpoint carries them and a resumed run does not recompute them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from srunit.errors import ConfigError
from srunit.losses.selfdistance import half_distance, self_distance_loss
from srunit.methods.base import Logs, StepContext
from srunit.methods.cut import CUT, CUTOptions, CUTState
from srunit.methods.regularizer import RegularizerOptions
from srunit.options import ModelConfig, check_value
from srunit.registry import METHODS


@dataclass(frozen=True)
class SelfDistanceOptions(RegularizerOptions):
    """weight * L_dist; weight 1 is DistanceGAN's default (lambda_distance_A)."""

    section: ClassVar[str] = "distance"
    stats_images: int = 900  # images per domain for mu and sigma (DistanceGAN's max_items)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_value(self.stats_images >= 2, "method.distance.stats_images", self.stats_images, "an integer >= 2")


@dataclass(frozen=True)
class SelfDistanceCUTOptions(CUTOptions):
    name: str = "cut-self-distance"  # the registered method
    distance: SelfDistanceOptions = field(default_factory=SelfDistanceOptions)


class SelfDistanceStatistics(nn.Module):
    """Buffers: the mean and standard deviation of the self-distances of domains X and Y, (2,) each,
    and the number of images each was computed from; NaN and 0 until `set` (or a checkpoint) fills them."""

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


@METHODS.register("cut-self-distance")
class SelfDistanceCUT(CUT):
    """CUT + weight * L_dist (losses/selfdistance.py)."""

    Options = SelfDistanceCUTOptions
    options: SelfDistanceCUTOptions

    def __init__(self, options: SelfDistanceCUTOptions, model: ModelConfig) -> None:
        super().__init__(options, model)
        self.stats = SelfDistanceStatistics()

    def prepare(self, batches: Iterator[dict[str, torch.Tensor]]) -> None:
        want = self.options.distance.stats_images
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
                    f"different images per domain (method.distance.stats_images is {self.options.distance.stats_images})")
        self.stats.set(d_x, d_y)

    def regularization(self, state: CUTState, ctx: StepContext, logs: Logs) -> torch.Tensor:
        o = self.options.distance
        if not o.active(ctx):
            return torch.zeros((), device=state.real_a.device)
        if not self.stats.ready:
            raise RuntimeError("cut-self-distance: the self-distance statistics are not computed; call "
                               "method.prepare(batches) before training (the Trainer does)")
        loss = self_distance_loss(state.real_a, state.fake_b, self.stats.mean, self.stats.std)
        logs["distance"] = loss.detach()
        return o.weight * loss
