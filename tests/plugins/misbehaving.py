"""A plugin method that loads fine and misbehaves while it trains (tests/test_round_nineteen_stegogan.py).

A GAN translator as small as the toy method of docs/adding-a-method.md, with one fault picked by
``$MISBEHAVING_FAULT`` (read at each step, so a run stopped by a fault resumes once it is unset): its G phase
returns a float, a tensor of many elements, an integer tensor, a vector or a float as a log, three items, a NaN
loss, a loss on the meta device or a new leaf tensor; or it raises (or exits) at step 3, or keeps an extra state that
a checkpoint cannot hold.
``$MISBEHAVING_LOAD_FAULT`` makes its ``load_extra_state`` raise when a run is resumed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from srunit.losses import discriminator_loss, generator_loss
from srunit.methods import Phase, StepContext, TranslationMethod
from srunit.methods.base import Logs, patch_discriminator
from srunit.options import MethodOptions, ModelConfig, option
from srunit.registry import METHODS, NETWORKS


@NETWORKS.register
class MisbehavingGenerator(nn.Module):
    size_multiple = 1
    multimodal = False

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.config: dict[str, Any] = {"width": width}
        self.layers = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 3, 3, padding=1),
                                    nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class MisbehavingBaseException(BaseException):
    """A plugin's own BaseException (neither an Exception, nor KeyboardInterrupt or SystemExit)."""


@dataclass(frozen=True)
class MisbehavingOptions(MethodOptions):
    name: str = option("misbehaving", "the registered method")
    width: int = option(4, "channels of the generator")


@METHODS.register
class Misbehaving(TranslationMethod):
    Options = MisbehavingOptions
    options: MisbehavingOptions

    def __init__(self, options: MisbehavingOptions, model: ModelConfig) -> None:
        super().__init__(options, model)
        self.G = MisbehavingGenerator(options.width)
        self.D = patch_discriminator(model)

    @property
    def generator(self) -> MisbehavingGenerator:
        return self.G

    def forward_step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        return {"real_A": batch["A"], "real_B": batch["B"], "fake_B": self.G(batch["A"])}

    def phases(self, ctx: StepContext) -> list[Phase]:
        if os.environ.get("MISBEHAVING_FAULT") == "no-phases" and ctx.step == 1:  # tests/test_round_thirty_seven_engine
            return []
        return [Phase("D", self.discriminator_loss, optimizers=("D",)),
                Phase("G", self.generator_loss, optimizers=("G",), frozen=("D",))]

    def discriminator_loss(self, state: dict[str, torch.Tensor], ctx: StepContext) -> tuple[torch.Tensor, Logs]:
        loss = discriminator_loss("lsgan", self.D(state["real_B"]), self.D(state["fake_B"].detach()))
        return loss, {"D": loss.detach()}

    def visuals(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.detach() for k, v in state.items()}

    def generator_loss(self, state: dict[str, torch.Tensor], ctx: StepContext) -> Any:
        total = generator_loss("lsgan", self.D(state["fake_B"]))
        logs = {"G": total.detach()}
        fault = os.environ.get("MISBEHAVING_FAULT", "")
        if fault == "nan":
            return total * float("nan"), logs
        if fault == "float":
            return float(total.detach()), logs
        if fault == "many":
            return (state["fake_B"] - state["real_B"]).abs(), logs
        if fault == "int":
            return torch.tensor(3), logs
        if fault == "log-vector":
            return total, {**logs, "G": state["fake_B"].detach()}
        if fault == "log-float":
            return total, {**logs, "G": 1.5}
        if fault == "three":
            return total, logs, 1
        if fault == "meta":  # on another device than the run's (tests/test_round_thirty_seven_t.py)
            return torch.zeros((), device="meta", requires_grad=True), logs
        if fault == "leaf":  # requires grad, but computed from no network: its backward reaches no parameter
            return torch.zeros((), requires_grad=True), logs
        if fault == "leaf-later" and ctx.step >= 2:  # a loss that leaves the networks after two steps
            return torch.zeros((), requires_grad=True), logs
        if fault == "generator-exit" and ctx.step == 3:
            raise GeneratorExit("misbehaving at step 3")
        if fault == "base-exception" and ctx.step == 3:
            raise MisbehavingBaseException("misbehaving at step 3")
        if fault == "raise" and ctx.step == 3:
            raise RuntimeError("misbehaving at step 3")
        if fault == "exit" and ctx.step == 3:
            raise SystemExit(0)
        if fault == "interrupt" and ctx.step == 3:
            raise KeyboardInterrupt
        return total, logs

    def extra_state(self) -> dict[str, Any]:
        return {"o": object()} if os.environ.get("MISBEHAVING_FAULT") == "state" else {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        fault = os.environ.get("MISBEHAVING_LOAD_FAULT", "")  # on --resume (tests/test_round_twenty_variants.py)
        if fault == "attribute":
            raise AttributeError("'Misbehaving' object has no attribute 'pool'")
        if fault == "key":
            state["pool"]
