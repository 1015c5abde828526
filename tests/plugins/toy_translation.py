"""A translation method of your own, in one file: the worked example of docs/adding-a-method.md.

"toy" is a tiny GAN translator: a two-layer convolutional generator G against srunit's PatchGAN D,
with an identity term |G(y) - y|_1 on domain-B images. It is not meant to translate well; it shows
every piece a method provides, and nothing else is needed for it to train, resume, translate, export
and serve in the app with srunit's own commands:

    SRUNIT_PLUGINS=toy_translation PYTHONPATH=tests/plugins srunit train --preset toy.yaml ...

(``SRUNIT_PLUGINS`` names the module to import; ``toy.yaml`` says ``method: {name: toy}``.)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from srunit.checks import check_value
from srunit.losses import discriminator_loss, generator_loss
from srunit.methods import Phase, StepContext, TranslationMethod
from srunit.methods.base import Logs, patch_discriminator
from srunit.options import MethodOptions, ModelConfig, option
from srunit.registry import METHODS, NETWORKS


# 1. The network that translates. Registered under its class name, which every file it is saved
#    to records, so a checkpoint loads without naming its class. It is a *translator*
#    (srunit.runtime.translation): images in [-1, 1] whose sides are multiples of `size_multiple`,
#    one output per image (`multimodal` False).
@NETWORKS.register
class ToyGenerator(nn.Module):
    size_multiple = 1
    multimodal = False

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.config: dict[str, Any] = {"width": width}  # the constructor's arguments, saved with the weights
        self.layers = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
                                    nn.Conv2d(width, 3, 3, padding=1, padding_mode="reflect"), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# 2. The method's options: the `method` section of a config. `name` is the method's only name.
#    `void_model_options` names the `model` options its networks never read, which a run then refuses.
@dataclass(frozen=True)
class ToyOptions(MethodOptions):
    name: str = option("toy", "the registered method")
    width: int = option(8, "channels of the toy generator")
    lambda_idt: float = option(1.0, "weight of the identity term |G(y) - y|_1")

    def __post_init__(self) -> None:
        check_value(self.width >= 1, "method.width", self.width, "an integer >= 1")
        check_value(self.lambda_idt >= 0, "method.lambda_idt", self.lambda_idt, "a number >= 0")

    def void_model_options(self) -> dict[str, str]:
        """The `model` section describes srunit's networks: here only D (srunit's PatchGAN) reads it. A run refuses
        the model options listed here, which would otherwise be taken, and recorded, without effect."""
        read = ("ndf", "n_layers_d", "antialias", "init_gain", "init_type")
        why = f"the toy method's networks read method.width (G) and model.{', model.'.join(read)} (D) only"
        return {f.name: why for f in fields(ModelConfig) if f.name not in read}


# 3. The method: its networks (each becomes NAME.safetensors in a checkpoint; each with parameters
#    gets an Adam), the forward pass of a step, and the step's phases.
@METHODS.register
class Toy(TranslationMethod):
    Options = ToyOptions
    options: ToyOptions

    def __init__(self, options: ToyOptions, model: ModelConfig) -> None:
        super().__init__(options, model)
        self.G = ToyGenerator(options.width)
        self.D = patch_discriminator(model)  # srunit's 70x70 PatchGAN, sized by the model section

    @property
    def generator(self) -> ToyGenerator:
        """What translate, export and the app use: saved as G.safetensors."""
        return self.G

    def forward_step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        real_a, real_b = batch["A"], batch["B"]
        out = self.G(torch.cat([real_a, real_b]))  # one pass for G(x) and G(y)
        return {"real_A": real_a, "real_B": real_b, "fake_B": out[: len(real_a)], "idt_B": out[len(real_a):]}

    def phases(self, ctx: StepContext) -> list[Phase]:
        return [Phase("D", self.discriminator_loss, optimizers=("D",)),
                Phase("G", self.generator_loss, optimizers=("G",), frozen=("D",))]

    def discriminator_loss(self, state: dict[str, torch.Tensor], ctx: StepContext) -> tuple[torch.Tensor, Logs]:
        loss = discriminator_loss("lsgan", self.D(state["real_B"]), self.D(state["fake_B"].detach()))
        return loss, {"D": loss.detach()}

    def generator_loss(self, state: dict[str, torch.Tensor], ctx: StepContext) -> tuple[torch.Tensor, Logs]:
        gan = generator_loss("lsgan", self.D(state["fake_B"]))
        idt = (state["idt_B"] - state["real_B"]).abs().mean()
        total = gan + self.options.lambda_idt * idt
        return total, {"G_GAN": gan.detach(), "idt": idt.detach(), "G": total.detach()}

    def visuals(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: state[k].detach() for k in ("real_A", "fake_B", "real_B")}
