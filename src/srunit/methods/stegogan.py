"""StegoGAN (Wu et al., CVPR 2024): CycleGAN for domains where some classes exist in domain B only.

When a class exists in domain B only (highways in target maps, tumours in target scans), a CycleGAN
must hide it somewhere in G_BA(y) to reconstruct y from it (steganography), and its G learns to paint
it into translations of domain-A images that never hold it. StegoGAN makes the hiding explicit:
G_BA masks the features it finds unmatched and hands them to G through a channel of their own
(networks/stegogan.py), so G's translation of domain A needs no room for them.

G (A -> B, `StegoGenerator`) is the translator; G_BA (B -> A, `StegoMaskGenerator`) splits y into its
translation G_BA(y) (decoded from the matched features), the hidden features H(y) and the
unmatchability mask M(y) (B, 1, H/4, W/4), upsampled to U(y) (B, 1, H, W). D_B judges domain B, D_A
domain A; sg is stop-gradient, eps ~ N(0, 1) per pixel, |.|_1 the mean absolute difference:

    fake_a = G_BA(y)                    rec_b = G(fake_a + sigma eps, hidden H(y))    rec_b' = G(fake_a)
    fake_b' = G(x)  (the translation)   fake_b = G(x, hidden sg(H(y)))                rec_a = G_BA(fake_b)

    L_G = GAN(D_B(fake_b)) + GAN(D_A(fake_a))
        + lambda_a |rec_a - x|_1 + lambda_b |rec_b - y|_1                                        (cycle)
        + lambda_identity (lambda_b |G(y) - y|_1 + lambda_a |G_BA(x) - x|_1)                    (identity)
        + lambda_consistency (|rec_b' (1 - U(y)) - y (1 - U(y))|_1
                              + |fake_b' (1 - U(fake_b)) - fake_b (1 - U(fake_b))|_1)         (consistency of B)
        + lambda_reg (mean sqrt(M(y) + 1e-10) + mean sqrt(M(fake_b) + 1e-10))            (mask regularisation)
        [+ lambda_feature |H(fake_b) - sg(H(y))|_1: computed by the public code and never added; off by default]
    L_D = 0.5 [GAN_real(D_B(y)) + GAN_fake(D_B(pool_B(fake_b)))] + the same for D_A on x and pool_A(fake_a)

The consistency terms ask the two ways of reaching an image to agree wherever the mask says the
content is matched; the regulariser keeps the mask small, so G_BA hides only what it must. The
noise (sigma = 0.01) keeps G from reading y out of imperceptible signal in fake_a instead of the
hidden channel. A step updates G and G_BA first (``generator_steps`` Adam steps on the same
gradients: the public code steps twice), then both discriminators on images drawn through the
pools. Where the public code departs from this (and from itself), docs/methods.md lists it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from srunit.checks import check_value
from srunit.losses import generator_loss
from srunit.losses.adversarial import GanMode
from srunit.methods.base import Logs, Phase, StepContext, patch_discriminator
from srunit.methods.cyclegan import discriminator_pass, identity_void_options, l1
from srunit.methods.pool import ImagePool, PooledMethod, check_pool_size
from srunit.networks.stegogan import StegoGenerator, StegoMaskGenerator, upsample_mask
from srunit.nn import at_least_float32
from srunit.options import (
    MAX_BLOCKS,
    MAX_WIDTH,
    DataConfig,
    MethodOptions,
    ModelConfig,
    check_pool_option,
    option,
    unread_without_nce,
)
from srunit.registry import METHODS

__all__ = ["StegoGAN", "StegoGANOptions", "StegoGANState", "mask_regularisation", "masked_consistency"]

MASK_EPS = 1e-10  # inside the square root of the mask regulariser: its gradient at M = 0 stays finite


@dataclass(frozen=True)
class StegoGANOptions(MethodOptions):
    """Loss weights and the hiding of StegoGAN; defaults of the authors' training command (their README's
    Google_mismatch settings) with one G step per iteration (see stegogan.yaml, stegogan-official.yaml)."""

    name: str = option("stegogan", "the registered method")
    gan_mode: GanMode = option("lsgan", "lsgan | vanilla | hinge")
    lambda_a: float = option(10.0, "weight of the cycle loss A -> B -> A")
    lambda_b: float = option(10.0, "weight of the cycle loss B -> A -> B")
    lambda_identity: float = option(0.5, "identity loss, times the cycle weight of its domain; 0 = off")
    lambda_consistency: float = option(1.0, "consistency of B outside the unmatchability mask (public "
                                            "--lambda_consistency; its parser's default 3, its README 1)")
    lambda_reg: float = option(0.3, "mask regularisation, mean sqrt(M) of both masks (public --lambda_reg; its "
                                    "parser's default 0.2, its README 0.3 for Google_mismatch, 0.25 for PlanIGN)")
    lambda_feature: float = option(0.0, "consistency of the hidden features |H(G(x, H(y))) - sg(H(y))|_1, which the "
                                        "public code computes and never adds; 0 = off")
    blocks_after_mask: int = option(0, "residual blocks between the hiding point and the up-sampling (0: after the "
                                       "last block, the README's --resnet_layer 8 of 9; the parser's default "
                                       "--resnet_layer 3 is 5)")
    mask_groups: int = option(0, "masks per feature map: 0 = one per trunk channel (public --mask_group 256 for "
                                 "ngf 64), G = one per group of 4 ngf / G consecutive channels")
    fusion: bool = option(True, "a residual block on the hidden features before G adds them (public --fusionblock)")
    cycle_noise: float = option(0.01, "std of the Gaussian noise on G_BA(y) before G reconstructs y from it")
    generator_steps: int = option(1, "Adam steps of G and G_BA on each iteration's gradients (public code: 2)")
    pool_size: int = option(50, "generated images per domain the discriminators also see; 0 = none")

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("lambda_a", "lambda_b", "lambda_identity", "lambda_consistency", "lambda_reg", "lambda_feature",
                    "cycle_noise"):
            check_value(getattr(self, key) >= 0, f"method.{key}", getattr(self, key), "a number >= 0")
        check_value(0 <= self.blocks_after_mask <= MAX_BLOCKS, "method.blocks_after_mask", self.blocks_after_mask,
                    "an integer from 0 to model.n_blocks")
        check_value(0 <= self.mask_groups <= 4 * MAX_WIDTH, "method.mask_groups", self.mask_groups,
                    "0 (one mask per channel) or a divisor of the 4 model.ngf trunk channels")
        check_value(1 <= self.generator_steps <= 8, "method.generator_steps", self.generator_steps,
                    "an integer from 1 to 8 (1: one Adam step per iteration; the public code takes 2)")
        check_pool_option(self.pool_size)

    def check_data(self, data: DataConfig) -> None:
        check_pool_size(self.pool_size, data)

    def void_model_options(self) -> dict[str, str]:
        return unread_without_nce("StegoGAN")

    def void_options(self) -> dict[str, str]:
        void = identity_void_options(self.lambda_a, self.lambda_b)
        if self.lambda_b == 0:  # the noise is drawn only for G's reconstruction of y, which only cycle_B compares
            void["cycle_noise"] = ("the noise is added to G_BA(y) only where G reconstructs y for the B cycle loss, "
                                   "and method.lambda_b is 0; give method.lambda_b > 0 too")
        return void


@dataclass
class StegoGANState:
    """Tensors of one step, shared by the G and D phases; images (B, 3, H, W), masks (B, 1, H/4, W/4)."""

    real_a: torch.Tensor  # x
    real_b: torch.Tensor  # y
    fake_a: torch.Tensor  # G_BA(y)
    hidden_b: torch.Tensor  # H(y), (B, 4 ngf, H/4, W/4)
    mask_b: torch.Tensor  # M(y)
    rec_b: torch.Tensor  # G(fake_a + noise, H(y))
    rec_b_clean: torch.Tensor  # G(fake_a)
    fake_b_clean: torch.Tensor  # G(x): the translation
    fake_b: torch.Tensor  # G(x, sg(H(y)))
    rec_a: torch.Tensor  # G_BA(fake_b)
    hidden_fake_b: torch.Tensor  # H(fake_b)
    mask_fake_b: torch.Tensor  # M(fake_b)
    idt_b: torch.Tensor | None  # G(y), when the identity loss is on
    idt_a: torch.Tensor | None  # G_BA(x)


def masked_consistency(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """|a (1 - U(M)) - b (1 - U(M))|_1: a, b (B, 3, H, W); mask M (B, 1, h, w) in [0, 1], upsampled to (H, W)
    bilinearly (aligned corners) and applied to every channel. Gradients reach a, b and the mask."""
    keep = 1 - upsample_mask(mask, a.shape[-2:])
    return l1(a * keep, b * keep)


def mask_regularisation(mask: torch.Tensor) -> torch.Tensor:
    """mean sqrt(M + 1e-10) over all positions, in float32: mask (B, 1, h, w) in [0, 1]. The square root
    pulls small values to 0 harder than an L1 norm: a sparse mask."""
    return (at_least_float32(mask) + MASK_EPS).sqrt().mean()


def as_image(mask: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """A mask (B, 1, h, w) in [0, 1] as a grey image (B, 3, H, W) in [-1, 1] for the sample grid: white = unmatched."""
    return (2 * upsample_mask(mask, size[-2:]) - 1).clamp(-1, 1).expand(-1, 3, -1, -1)


@METHODS.register
class StegoGAN(PooledMethod):
    """G (A -> B), G_BA (B -> A, with the unmatchability mask), D_B and D_A PatchGANs, an image pool each."""

    Options = StegoGANOptions
    options: StegoGANOptions

    def __init__(self, options: StegoGANOptions, model: ModelConfig) -> None:
        super().__init__(options, model)
        common = dict(ngf=model.ngf, n_blocks=model.n_blocks, antialias=model.antialias,
                      antialias_up=model.antialias_up, feature_layers=model.feature_layers,
                      init_gain=model.init_gain, init_type=model.init_type,
                      blocks_after_mask=options.blocks_after_mask)
        self.G = StegoGenerator(**common, fusion=options.fusion)  # type: ignore[arg-type]
        self.G_BA = StegoMaskGenerator(**common, mask_groups=options.mask_groups)  # type: ignore[arg-type]
        self.D_B = patch_discriminator(model)
        self.D_A = patch_discriminator(model)
        # Not networks: saved by extra_state. Under DDP each process keeps its own pools.
        self.pools = {"B": ImagePool(options.pool_size), "A": ImagePool(options.pool_size)}

    @property
    def generator(self) -> StegoGenerator:
        return self.G

    # ---------------------------------------------------------------- forward
    def forward_step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> StegoGANState:
        o = self.options
        x, y = batch["A"], batch["B"]
        n, m = x.shape[0], y.shape[0]
        identity = o.lambda_identity > 0
        # Four batched passes; instance norm is per image, so each equals the separate passes.
        split = self.G_BA.split(torch.cat([y, x]) if identity else y)
        fake_a, hidden_b, mask_b = split.image[:m], split.hidden[:m], split.mask[:m]
        idt_a = split.image[m:] if identity else None
        plain = self.G(torch.cat([x, fake_a, y]) if identity else torch.cat([x, fake_a]))
        fake_b_clean, rec_b_clean, idt_b = plain[:n], plain[n : n + m], (plain[n + m :] if identity else None)
        noise = o.cycle_noise * torch.randn(fake_a.shape, device=fake_a.device, dtype=fake_a.dtype)
        # y's hidden features reach G twice: to reconstruct y (trained through them) and, held fixed, on x.
        revealed = self.G.forward_hidden(torch.cat([fake_a + noise, x]), torch.cat([hidden_b, hidden_b.detach()]))
        rec_b, fake_b = revealed[:m], revealed[m:]
        back = self.G_BA.split(fake_b)
        return StegoGANState(x, y, fake_a, hidden_b, mask_b, rec_b, rec_b_clean, fake_b_clean, fake_b, back.image,
                             back.hidden, back.mask, idt_b, idt_a)

    # ---------------------------------------------------------------- phases
    def phases(self, ctx: StepContext) -> list[Phase]:
        return [
            Phase("G", self.generator_loss, optimizers=("G", "G_BA"), frozen=("D_B", "D_A"),
                  steps=self.options.generator_steps),
            Phase("D", self.discriminator_loss, optimizers=("D_B", "D_A")),
        ]

    def generator_loss(self, s: StegoGANState, ctx: StepContext) -> tuple[torch.Tensor, Logs]:
        o = self.options
        gan_b = generator_loss(o.gan_mode, self.D_B(s.fake_b))
        gan_a = generator_loss(o.gan_mode, self.D_A(s.fake_a))
        cycle_a = o.lambda_a * l1(s.rec_a, s.real_a)
        cycle_b = o.lambda_b * l1(s.rec_b, s.real_b)
        consistency = o.lambda_consistency * (masked_consistency(s.rec_b_clean, s.real_b, s.mask_b)
                                              + masked_consistency(s.fake_b_clean, s.fake_b, s.mask_fake_b))
        reg = o.lambda_reg * (mask_regularisation(s.mask_b) + mask_regularisation(s.mask_fake_b))
        total = gan_b + gan_a + cycle_a + cycle_b + consistency + reg
        logs: Logs = {"G_GAN_B": gan_b.detach(), "G_GAN_A": gan_a.detach(), "cycle_A": cycle_a.detach(),
                      "cycle_B": cycle_b.detach(), "consistency_B": consistency.detach(), "mask_reg": reg.detach(),
                      "mask_B": s.mask_b.detach().float().mean()}
        if s.idt_b is not None and s.idt_a is not None:
            idt_b = o.lambda_identity * o.lambda_b * l1(s.idt_b, s.real_b)
            idt_a = o.lambda_identity * o.lambda_a * l1(s.idt_a, s.real_a)
            total = total + idt_b + idt_a
            logs.update(idt_B=idt_b.detach(), idt_A=idt_a.detach())
        if o.lambda_feature > 0:
            feature = o.lambda_feature * l1(s.hidden_fake_b, s.hidden_b.detach())
            total = total + feature
            logs["consistency_feature"] = feature.detach()
        logs["G"] = total.detach()
        return total, logs

    def discriminator_loss(self, s: StegoGANState, ctx: StepContext) -> tuple[torch.Tensor, Logs]:
        mode = self.options.gan_mode
        loss_b = discriminator_pass(mode, self.D_B, s.real_b, self.pools["B"].query(s.fake_b))
        loss_a = discriminator_pass(mode, self.D_A, s.real_a, self.pools["A"].query(s.fake_a))
        total = loss_b + loss_a
        return total, {"D_B": loss_b.detach(), "D_A": loss_a.detach(), "D": total.detach()}

    # ---------------------------------------------------------------- images

    def visuals(self, s: StegoGANState) -> dict[str, torch.Tensor]:
        """real_A | fake_B (the translation G(x)) | rec_A | real_B | mask_B (what G_BA holds back of y: white =
        unmatched) | fake_A | rec_B."""
        out = {"real_A": s.real_a, "fake_B": s.fake_b_clean, "rec_A": s.rec_a, "real_B": s.real_b,
               "mask_B": as_image(s.mask_b, s.real_b.shape).to(s.real_b.dtype), "fake_A": s.fake_a, "rec_B": s.rec_b}
        return {k: v.detach() for k, v in out.items()}
