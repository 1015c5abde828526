"""Ablation E6 of SRUNIT (App. G): CUT with a Lipschitz penalty on the discriminator.

The penalty (losses/lipschitz.py) is added to the D phase through `discriminator_regularization`.
It is a double backward: D's input gradient is itself differentiated w.r.t. D's parameters. It
runs in float32 outside autocast (so no loss scaling is needed for it, and GradScaler's scaling
of the whole D loss passes through it unchanged), and on D's eager `forward`, because graphs made
by torch.compile do not support double backward. Gradients of D are then averaged over the
processes of a job like any other D gradient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch

from srunit.losses.lipschitz import lipschitz_penalty
from srunit.methods.base import Logs, StepContext
from srunit.methods.cut import CUT, CUTOptions, CUTState
from srunit.methods.regularizer import RegularizerOptions
from srunit.options import check_choice
from srunit.registry import METHODS


@dataclass(frozen=True)
class LipschitzOptions(RegularizerOptions):
    """weight * L_lip added to D's loss."""

    section: ClassVar[str] = "lipschitz"
    weight: float = 10.0  # WGAN-GP's lambda [20]; App. G gives none
    real: Literal["source", "target"] = "source"  # the real images of the first term: x (App. G) or y

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice(self.real, "method.lipschitz.real", ("source", "target"))


@dataclass(frozen=True)
class LipschitzCUTOptions(CUTOptions):
    name: str = "cut-lipschitz"  # the registered method
    lipschitz: LipschitzOptions = field(default_factory=LipschitzOptions)


@METHODS.register("cut-lipschitz")
class LipschitzCUT(CUT):
    """CUT whose D minimises its GAN loss + weight * L_lip."""

    Options = LipschitzCUTOptions
    options: LipschitzCUTOptions

    def _eager_discriminator(self, x: torch.Tensor) -> torch.Tensor:
        # The class's forward, not a torch.compile wrapper that compile_networks may have set on D.
        return type(self.D).forward(self.D, x)

    def discriminator_regularization(self, state: CUTState, ctx: StepContext, logs: Logs) -> torch.Tensor:
        o = self.options.lipschitz
        if not o.active(ctx):
            return torch.zeros((), device=state.real_a.device)
        real = state.real_a if o.real == "source" else state.real_b
        # The images of D's GAN loss: G(x) in the frame G saw (D's loss does not depend on it).
        loss = lipschitz_penalty(self._eager_discriminator, real, state.fake_b)
        logs["lipschitz"] = loss.detach()
        return o.weight * loss
