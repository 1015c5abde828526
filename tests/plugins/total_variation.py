"""A loss term of your own, in one file: the worked example of docs/adding-a-method.md ("Add a loss term").

"tv" adds weight * TV(G(x)) to the generator's loss, the mean absolute difference between neighbouring pixels of
the translation (anisotropic total variation, Rudin, Osher and Fatemi 1992): a smoothness prior on what G draws.
Once this module is imported, every method that takes added loss terms (CUT, FastCUT, SRUNIT, the ablations, and
any method offering the terms' feature protocols) takes a ``method.tv`` section from its config; nothing in srunit
changes:

    SRUNIT_PLUGINS=total_variation PYTHONPATH=tests/plugins srunit train --preset srunit --method.tv.weight 0.1 ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from srunit.methods.base import Logs, StepContext
from srunit.methods.terms import FeatureNetworks, FeatureState, RegularizerOptions, Term
from srunit.options import option
from srunit.registry import TERMS


def total_variation(images: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """Anisotropic total variation of images (B, C, H, W): the mean |difference| (or squared difference) of
    vertical and of horizontal neighbours, summed: a scalar, 0 for constant images."""
    dy = images[..., 1:, :] - images[..., :-1, :]
    dx = images[..., :, 1:] - images[..., :, :-1]
    if squared:
        return dy.square().mean() + dx.square().mean()
    return dy.abs().mean() + dx.abs().mean()


# 1. The options: the section of the method's config that switches the term on (`section`). weight and start
#    (the fraction of training before it is switched on) and their checks (errors name method.tv.KEY) come from
#    RegularizerOptions; this term sets its own defaults and adds one option.
@dataclass(frozen=True)
class TotalVariationOptions(RegularizerOptions):
    """weight * TV(G(x)) added to the generator's loss."""

    section: ClassVar[str] = "tv"
    weight: float = option(0.1, "the coefficient of TV(G(x))")
    start: float = option(0.0, "fraction of the training steps before the term is switched on")
    squared: bool = option(False, "squared differences (a quadratic smoothness prior) instead of absolute ones")


# 2. The term: registered under its options' section. It reads the step through the FeatureState protocol
#    (real_a, fake_b, flip, ...) and the method through FeatureNetworks (G, F, D), never through CUT's classes.
@TERMS.register
class TotalVariation(Term):
    Options = TotalVariationOptions
    phase = "G"  # added to the loss of G (and F); "D" adds a term to the discriminator's loss
    summary = "total variation of G(x), a smoothness prior on the translation"
    options: TotalVariationOptions

    def loss(self, method: FeatureNetworks, state: FeatureState, ctx: StepContext, logs: Logs) -> torch.Tensor:
        o = self.options
        tv = total_variation(state.fake_b, o.squared)  # mirroring (FastCUT's flips) leaves TV as it is
        logs["tv"] = tv.detach()  # the unweighted term, logged under the section's name
        return o.weight * tv
