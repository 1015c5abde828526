"""CycleGAN (Zhu et al., ICCV 2017): two generators, two PatchGANs, cycle-consistency and identity losses.

G translates A -> B (the `generator`, saved as G.safetensors, so `srunit translate` uses it as for
CUT) and G_BA translates B -> A; D_B judges domain B and D_A domain A. With x from A and y from B:

    L_G = GAN(D_B(G(x))) + GAN(D_A(G_BA(y)))                                  (Eq. 1, both directions)
        + lambda_a |G_BA(G(x)) - x|_1 + lambda_b |G(G_BA(y)) - y|_1             (Eq. 2, cycle)
        + lambda_identity (lambda_b |G(y) - y|_1 + lambda_a |G_BA(x) - x|_1)    (Sec. 5.2, identity)
    L_D = 0.5 [GAN_real(D_B(y)) + GAN_fake(D_B(pool_B(G(x))))] + the same for D_A on A

with |.|_1 the mean absolute difference. The identity weight is relative to the cycle weight of
the domain the images come from, as the public code scales it. A step runs the generator update
first, then the discriminators on images drawn through the pools (methods/pool.py), as that code does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from srunit.checks import check_value
from srunit.losses import discriminator_loss, generator_loss
from srunit.losses.adversarial import GanMode
from srunit.methods.base import Logs, Phase, StepContext, patch_discriminator, resnet_generator
from srunit.methods.pool import ImagePool, PooledMethod, check_pool_size
from srunit.networks import PatchDiscriminator, ResnetGenerator
from srunit.nn import at_least_float32
from srunit.options import DataConfig, MethodOptions, ModelConfig, check_pool_option, option, unread_without_nce
from srunit.registry import METHODS


@dataclass(frozen=True)
class CycleGANOptions(MethodOptions):
    """Loss weights of CycleGAN; the defaults are those of the public pytorch-CycleGAN-and-pix2pix code."""

    name: str = option("cyclegan", "the registered method")
    gan_mode: GanMode = option("lsgan", "lsgan | vanilla | hinge")
    lambda_a: float = option(10.0, "weight of the cycle loss A -> B -> A")
    lambda_b: float = option(10.0, "weight of the cycle loss B -> A -> B")
    lambda_identity: float = option(0.5, "identity loss, times the cycle weight of its domain; 0 = off")
    pool_size: int = option(50, "generated images per domain the discriminators also see; 0 = none")

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("lambda_a", "lambda_b", "lambda_identity"):
            check_value(getattr(self, key) >= 0, f"method.{key}", getattr(self, key), "a number >= 0")
        check_pool_option(self.pool_size)

    def check_data(self, data: DataConfig) -> None:
        check_pool_size(self.pool_size, data)

    def void_model_options(self) -> dict[str, str]:
        return unread_without_nce("CycleGAN")

    def void_options(self) -> dict[str, str]:
        return identity_void_options(self.lambda_a, self.lambda_b)


def identity_void_options(lambda_a: float, lambda_b: float) -> dict[str, str]:
    """The identity loss is lambda_identity times the cycle weight of its domain (CycleGAN's and StegoGAN's): with
    both cycle weights 0 it is 0 whatever lambda_identity is."""
    if lambda_a == 0 and lambda_b == 0:
        return {"lambda_identity": "the identity loss is method.lambda_identity times the cycle weight of its "
                                   "domain, and method.lambda_a and method.lambda_b are 0; give a cycle weight > 0 too"}
    return {}


@dataclass
class CycleGANState:
    """Tensors of one step, shared by the G and D phases; all (B, 3, H, W)."""

    real_a: torch.Tensor
    real_b: torch.Tensor
    fake_b: torch.Tensor  # G(x)
    fake_a: torch.Tensor  # G_BA(y)
    rec_a: torch.Tensor  # G_BA(G(x))
    rec_b: torch.Tensor  # G(G_BA(y))
    idt_b: torch.Tensor | None  # G(y), when the identity loss is on
    idt_a: torch.Tensor | None  # G_BA(x)


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference, reduced in float32."""
    return (at_least_float32(a) - at_least_float32(b)).abs().mean()


def discriminator_pass(mode: GanMode, d: PatchDiscriminator, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """0.5 * (GAN_real(d(real)) + GAN_fake(d(fake))) in one batched pass of d (instance norm is per
    image, so it equals two passes); real (B, 3, H, W), fake (B', 3, H, W), detached."""
    logits_real, logits_fake = d(torch.cat([real, fake])).split([real.shape[0], fake.shape[0]])
    return discriminator_loss(mode, logits_real, logits_fake)


@METHODS.register
class CycleGAN(PooledMethod):
    """Two ResNet generators (G: A -> B, G_BA: B -> A) and two PatchGANs (D_B, D_A)."""

    Options = CycleGANOptions
    options: CycleGANOptions

    def __init__(self, options: CycleGANOptions, model: ModelConfig) -> None:
        super().__init__(options, model)

        self.G = resnet_generator(model)
        self.G_BA = resnet_generator(model)
        self.D_B = patch_discriminator(model)
        self.D_A = patch_discriminator(model)
        # Not networks: saved by extra_state. Under DDP each process keeps its own pools.
        self.pools = {"B": ImagePool(options.pool_size), "A": ImagePool(options.pool_size)}

    @property
    def generator(self) -> ResnetGenerator:
        return self.G

    # ---------------------------------------------------------------- forward
    def forward_step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> CycleGANState:
        real_a, real_b = batch["A"], batch["B"]
        n, m = real_a.shape[0], real_b.shape[0]
        identity = self.options.lambda_identity > 0
        # Three batched passes instead of six: instance norm is per image, so they equal separate ones.
        out = self.G(torch.cat([real_a, real_b]) if identity else real_a)
        fake_b, idt_b = out[:n], (out[n:] if identity else None)
        out = self.G_BA(torch.cat([fake_b, real_b, real_a]) if identity else torch.cat([fake_b, real_b]))
        rec_a, fake_a, idt_a = out[:n], out[n : n + m], (out[n + m :] if identity else None)
        rec_b = self.G(fake_a)
        return CycleGANState(real_a, real_b, fake_b, fake_a, rec_a, rec_b, idt_b, idt_a)

    # ---------------------------------------------------------------- phases
    def phases(self, ctx: StepContext) -> list[Phase]:
        return [
            Phase("G", self.generator_loss, optimizers=("G", "G_BA"), frozen=("D_B", "D_A")),
            Phase("D", self.discriminator_loss, optimizers=("D_B", "D_A")),
        ]

    def generator_loss(self, state: CycleGANState, ctx: StepContext) -> tuple[torch.Tensor, Logs]:
        o = self.options
        gan_b = generator_loss(o.gan_mode, self.D_B(state.fake_b))
        gan_a = generator_loss(o.gan_mode, self.D_A(state.fake_a))
        cycle_a = o.lambda_a * l1(state.rec_a, state.real_a)
        cycle_b = o.lambda_b * l1(state.rec_b, state.real_b)
        total = gan_b + gan_a + cycle_a + cycle_b
        logs: Logs = {"G_GAN_B": gan_b.detach(), "G_GAN_A": gan_a.detach(), "cycle_A": cycle_a.detach(),
                      "cycle_B": cycle_b.detach()}
        if state.idt_b is not None and state.idt_a is not None:
            idt_b = o.lambda_identity * o.lambda_b * l1(state.idt_b, state.real_b)
            idt_a = o.lambda_identity * o.lambda_a * l1(state.idt_a, state.real_a)
            total = total + idt_b + idt_a
            logs.update(idt_B=idt_b.detach(), idt_A=idt_a.detach())
        logs["G"] = total.detach()
        return total, logs

    def discriminator_loss(self, state: CycleGANState, ctx: StepContext) -> tuple[torch.Tensor, Logs]:
        mode = self.options.gan_mode
        loss_b = discriminator_pass(mode, self.D_B, state.real_b, self.pools["B"].query(state.fake_b))
        loss_a = discriminator_pass(mode, self.D_A, state.real_a, self.pools["A"].query(state.fake_a))
        total = loss_b + loss_a
        return total, {"D_B": loss_b.detach(), "D_A": loss_a.detach(), "D": total.detach()}

    # ---------------------------------------------------------------- state and images

    def visuals(self, state: CycleGANState) -> dict[str, torch.Tensor]:
        out = {"real_A": state.real_a, "fake_B": state.fake_b, "rec_A": state.rec_a,
               "real_B": state.real_b, "fake_A": state.fake_a, "rec_B": state.rec_b}
        return {k: v.detach() for k, v in out.items()}
