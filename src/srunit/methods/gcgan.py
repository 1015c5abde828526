"""GcGAN (Fu et al., CVPR 2019): one-sided translation with a geometry-consistency constraint.

A fixed geometric transformation f (a 90-degree clockwise rotation, `rot`, or a vertical flip, `vf`)
does not change what an image shows, so translating f(x) must give f of the translation of x.
G translates x; G_gc translates f(x) (the same network by default, the public code's
`gc_gan_share` model; a second one with `share_generator: false`, its `gc_gan_cross` model). D
judges G(x) against real y, D_gc judges G_gc(f(x)) against real f(y). With |.|_1 the mean absolute
difference:

    L_G = lambda_gan [GAN(D(G(x))) + GAN(D_gc(G_gc(f(x))))]
        + lambda_ab lambda_gc [|G(x) - sg(f^-1(G_gc(f(x))))|_1 + |G_gc(f(x)) - sg(f(G(x)))|_1]   (L_geo)
        + lambda_ab lambda_identity [|G(y) - y|_1 + |G_gc(f(y)) - f(y)|_1]
    L_D = 0.5 [GAN_real(D(y)) + GAN_fake(D(pool(G(x))))] + 0.5 [the same for D_gc on f(y), G_gc(f(x))]

sg (stop-gradient) is where the public code detaches the target of each L_geo term: each side is
pulled towards the other, and the gradient is that of one term (the paper's L_geo without sg has
the same value and twice the gradient). A step updates G first, then both discriminators.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch

from srunit.checks import check_value
from srunit.errors import ConfigError
from srunit.losses import generator_loss
from srunit.losses.adversarial import GanMode
from srunit.methods.base import Logs, Phase, StepContext, patch_discriminator, resnet_generator
from srunit.methods.cyclegan import discriminator_pass, l1
from srunit.methods.pool import ImagePool, PooledMethod, check_pool_size
from srunit.networks import ResnetGenerator
from srunit.options import DataConfig, MethodOptions, ModelConfig, check_pool_option, option, unread_without_nce
from srunit.registry import METHODS

Geometry = Literal["rot", "vf"]
GEOMETRIES: tuple[str, ...] = get_args(Geometry)


def transform(x: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """f: x (B, C, H, W) -> rot: rotated 90 degrees clockwise, (B, C, W, H); vf: flipped upside down."""
    return torch.rot90(x, -1, (2, 3)) if geometry == "rot" else x.flip(2)


def inverse_transform(x: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """f^-1: rot: rotated 90 degrees counter-clockwise; vf: flipped upside down (its own inverse)."""
    return torch.rot90(x, 1, (2, 3)) if geometry == "rot" else x.flip(2)


@dataclass(frozen=True)
class GcGANOptions(MethodOptions):
    """Loss weights and the transformation of GcGAN; defaults from its public code (see gcgan.yaml)."""

    name: str = option("gcgan", "the registered method")
    gan_mode: GanMode = option("lsgan", "lsgan | vanilla | hinge")
    geometry: Geometry = option("rot", "f: rot (90 degrees clockwise; needs square images) | vf (vertical flip)")
    share_generator: bool = option(True, "G_gc is G (gc_gan_share); false: a second generator (gc_gan_cross)")
    lambda_gan: float = option(1.0, "weight of each GAN term of G (public lambda_G)")
    lambda_ab: float = option(10.0, "base weight of L_geo and the identity loss (public lambda_AB)")
    lambda_gc: float = option(2.0, "L_geo weight, times lambda_ab")
    lambda_identity: float = option(0.5, "identity weight, times lambda_ab (public `identity`); 0 = off")
    pool_size: int = option(50, "generated images per discriminator it also sees; 0 = none")

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("lambda_gan", "lambda_ab", "lambda_gc", "lambda_identity"):
            check_value(getattr(self, key) >= 0, f"method.{key}", getattr(self, key), "a number >= 0")
        check_pool_option(self.pool_size)

    def needs_one_size(self) -> list[tuple[str, str, str]]:
        rot = [("method.geometry 'rot'", "it rotates by 90 degrees", "method.geometry=vf")] if self.geometry == "rot" \
            else []
        return rot + super().needs_one_size()

    def check_data(self, data: DataConfig) -> None:
        # The public code rotates fineSize x fineSize crops only.
        if self.geometry == "rot" and not data.crops:
            raise ConfigError(
                f"method.geometry 'rot' rotates by 90 degrees and needs square images, but data.preprocess "
                f"{data.preprocess!r} keeps each image's shape; use a cropping mode such as resize_and_crop "
                "(square crops of data.crop_size), or method.geometry=vf"
            )
        check_pool_size(self.pool_size, data)

    def void_model_options(self) -> dict[str, str]:
        return unread_without_nce("GcGAN")

    def void_options(self) -> dict[str, str]:
        """L_geo and the identity loss are weighted by lambda_ab times their own weight: with lambda_ab 0 their own
        weights change nothing."""
        if self.lambda_ab == 0:
            why = ("L_geo and the identity loss are weighted by method.lambda_ab times this weight, and "
                   "method.lambda_ab is 0; give method.lambda_ab > 0 too")
            return {"lambda_gc": why, "lambda_identity": why}
        return {}


@dataclass
class GcGANState:
    """Tensors of one step, shared by the G and D phases; "gc" tensors are in the transformed frame."""

    real_a: torch.Tensor  # x, (B, 3, H, W)
    real_b: torch.Tensor  # y
    real_gc_b: torch.Tensor  # f(y)
    fake_b: torch.Tensor  # G(x)
    fake_gc_b: torch.Tensor  # G_gc(f(x))
    idt_b: torch.Tensor | None  # G(y), when the identity loss is on
    idt_gc_b: torch.Tensor | None  # G_gc(f(y))


@METHODS.register
class GcGAN(PooledMethod):
    """G (and G_gc unless shared), D on domain B and D_gc on transformed domain-B images."""

    Options = GcGANOptions
    options: GcGANOptions

    def __init__(self, options: GcGANOptions, model: ModelConfig) -> None:
        super().__init__(options, model)

        self.G = resnet_generator(model)
        if not options.share_generator:
            self.G_gc = resnet_generator(model)
        self.D = patch_discriminator(model)
        self.D_gc = patch_discriminator(model)
        # Not networks: saved by extra_state. Under DDP each process keeps its own pools.
        self.pools = {"B": ImagePool(options.pool_size), "gc_B": ImagePool(options.pool_size)}

    @property
    def generator(self) -> ResnetGenerator:
        return self.G

    @property
    def generators(self) -> tuple[str, ...]:
        return ("G",) if self.options.share_generator else ("G", "G_gc")

    # ---------------------------------------------------------------- forward
    def forward_step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> GcGANState:
        o = self.options
        real_a, real_b = batch["A"], batch["B"]
        if o.geometry == "rot" and real_a.shape[-1] != real_a.shape[-2]:
            raise ConfigError(f"method.geometry 'rot' needs square images, got {real_a.shape[-2]}x{real_a.shape[-1]}; "
                              "train on square crops or use method.geometry=vf")
        n = real_a.shape[0]
        identity = o.lambda_identity > 0
        real_gc_a, real_gc_b = transform(real_a, o.geometry), transform(real_b, o.geometry)
        plain = [real_a, real_b] if identity else [real_a]
        moved = [real_gc_a, real_gc_b] if identity else [real_gc_a]
        if o.share_generator:
            # One batched pass (square images, so f keeps the shape); instance norm is per image.
            out = self.G(torch.cat(plain + moved))
            out, out_gc = out[: len(plain) * n], out[len(plain) * n :]
        else:
            out, out_gc = self.G(torch.cat(plain)), self.G_gc(torch.cat(moved))
        fake_b, fake_gc_b = out[:n], out_gc[:n]
        idt_b, idt_gc_b = (out[n:], out_gc[n:]) if identity else (None, None)
        return GcGANState(real_a, real_b, real_gc_b, fake_b, fake_gc_b, idt_b, idt_gc_b)

    # ---------------------------------------------------------------- phases
    def phases(self, ctx: StepContext) -> list[Phase]:
        return [
            Phase("G", self.generator_loss, optimizers=self.generators, frozen=("D", "D_gc")),
            Phase("D", self.discriminator_loss, optimizers=("D", "D_gc")),
        ]

    def geometry_loss(self, fake_b: torch.Tensor, fake_gc_b: torch.Tensor) -> torch.Tensor:
        """L_geo with the public code's stop-gradients, unweighted: fake_b = G(x), fake_gc_b = G_gc(f(x))."""
        g = self.options.geometry
        return (l1(fake_b, inverse_transform(fake_gc_b, g).detach())
                + l1(fake_gc_b, transform(fake_b, g).detach()))

    def generator_loss(self, state: GcGANState, ctx: StepContext) -> tuple[torch.Tensor, Logs]:
        o = self.options
        gan = o.lambda_gan * generator_loss(o.gan_mode, self.D(state.fake_b))
        gan_gc = o.lambda_gan * generator_loss(o.gan_mode, self.D_gc(state.fake_gc_b))
        gc = o.lambda_ab * o.lambda_gc * self.geometry_loss(state.fake_b, state.fake_gc_b)
        total = gan + gan_gc + gc
        logs: Logs = {"G_GAN": gan.detach(), "G_GAN_gc": gan_gc.detach(), "gc": gc.detach()}
        if state.idt_b is not None and state.idt_gc_b is not None:
            idt = o.lambda_ab * o.lambda_identity * l1(state.idt_b, state.real_b)
            idt_gc = o.lambda_ab * o.lambda_identity * l1(state.idt_gc_b, state.real_gc_b)
            total = total + idt + idt_gc
            logs.update(idt=idt.detach(), idt_gc=idt_gc.detach())
        logs["G"] = total.detach()
        return total, logs

    def discriminator_loss(self, state: GcGANState, ctx: StepContext) -> tuple[torch.Tensor, Logs]:
        mode = self.options.gan_mode
        loss = discriminator_pass(mode, self.D, state.real_b, self.pools["B"].query(state.fake_b))
        loss_gc = discriminator_pass(mode, self.D_gc, state.real_gc_b, self.pools["gc_B"].query(state.fake_gc_b))
        total = loss + loss_gc
        return total, {"D_B": loss.detach(), "D_gc": loss_gc.detach(), "D": total.detach()}

    # ---------------------------------------------------------------- state and images

    def visuals(self, state: GcGANState) -> dict[str, torch.Tensor]:
        out = {"real_A": state.real_a, "fake_B": state.fake_b,
               "fake_B_gc": inverse_transform(state.fake_gc_b, self.options.geometry), "real_B": state.real_b}
        return {k: v.detach() for k, v in out.items()}
