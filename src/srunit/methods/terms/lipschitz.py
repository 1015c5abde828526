"""Ablation E6 of SRUNIT (App. G): a Lipschitz penalty on the discriminator, as a term of CUT's D phase.

The penalty (losses/lipschitz.py) is a double backward: D's input gradient is itself differentiated
w.r.t. D's parameters. It runs in float32 outside autocast (so no loss scaling is needed for it, and
GradScaler's scaling of the whole D loss passes through it unchanged), and on D's eager `forward`,
because graphs made by torch.compile do not support double backward. Gradients of D are then averaged
over the processes of a job like any other D gradient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from srunit.losses.lipschitz import lipschitz_penalty
from srunit.methods.base import Logs, StepContext
from srunit.methods.terms.base import FeatureNetworks, FeatureState, RegularizerOptions, Term
from srunit.options import option
from srunit.registry import TERMS

__all__ = ["LipschitzOptions", "Lipschitz"]


@dataclass(frozen=True)
class LipschitzOptions(RegularizerOptions):
    """weight * L_lip added to D's loss."""

    section: ClassVar[str] = "lipschitz"
    weight: float = option(10.0, "WGAN-GP's lambda [20]; App. G gives none")
    real: Literal["source", "target"] = option(
        "source", "the real images of the first term: source, x (App. G), or target, y")

    def __post_init__(self) -> None:
        super().__post_init__()


@TERMS.register
class Lipschitz(Term):
    """weight * L_lip added to D's loss (``method.lipschitz``)."""

    Options = LipschitzOptions
    summary = "ablation E6: a Lipschitz penalty on D"
    phase = "D"
    options: LipschitzOptions

    def loss(self, method: FeatureNetworks, state: FeatureState, ctx: StepContext, logs: Logs) -> torch.Tensor:
        o = self.options
        real = state.real_a if o.real == "source" else state.real_b

        def eager_discriminator(x: torch.Tensor) -> torch.Tensor:
            # The class's forward, not a torch.compile wrapper that compile_networks may have set on D.
            return type(method.D).forward(method.D, x)

        # The images of D's GAN loss: G(x) in the frame G saw (D's loss does not depend on it).
        loss = lipschitz_penalty(eager_discriminator, real, state.fake_b)
        logs["lipschitz"] = loss.detach()
        return o.weight * loss
