"""DRIT (Lee et al., ECCV 2018, "Diverse Image-to-Image Translation via Disentangled Representations"),
trained as the authors' public code trains it (github HsinYingLee/DRIT, src/; defaults of its
concat variant).

Every image is split into a content code (shared space) and an attribute code z_a (of its domain).
Networks, each a checkpoint file: E_c (content encoders A, B), E_a (attribute encoders A, B), G
(generators A, B), D_A and D_B (domain discriminators for the cross translations), D_A2 and D_B2
(the same for translations from random codes z ~ N(0, I)), D_content (tells the content codes of
the two domains apart).

Losses (weights are options; the public values in brackets):
  D phase:         BCE of D_A, D_A2, D_B, D_B2 on real and translated images; with mode seeking
                   D_A2 / D_B2 also see the translations of a second random code (and the real images again).
  D_content phase: BCE(D_content(z_c^A), 0) + BCE(D_content(z_c^B), 1), its gradient norm clipped (5).
  EG phase (E_c, E_a, G): domain adversarial on the cross translations (1), content adversarial with
                   target 1/2 (1), cross-cycle L1 (10), self-reconstruction L1 (10), KL(q(z_a|x) || N(0, I))
                   and the mean square of the content code (0.01 each).
  G phase (E_c, G): domain adversarial of D_A2 / D_B2 on the random-code translations (1), latent
                   regression L1 |E^a(G(z_c, z)) - z| (10), and mode seeking (1) when on.
Schedule of the public code: of every `d_iter` (3) steps one is a full step (all four phases), the
others update D_content only. The public code's G phase back-propagates through the forward pass of
the step after the EG phase has changed the weights in place (PyTorch 0.4 let it); here the G phase
runs its own forward pass of the same images and codes at the updated weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from srunit.checks import check_value
from srunit.errors import ConfigError
from srunit.losses.drit import (
    bce_to,
    discriminator_bce,
    kl_to_standard_normal,
    latent_l1,
    mode_seeking_loss,
)
from srunit.methods.base import Logs, OptimizerOptions, Phase, StepContext
from srunit.methods.cyclegan import l1
from srunit.methods.pool import ImagePool, PooledMethod, check_pool_size
from srunit.networks.drit import (
    ATTRIBUTE_MIN_SIZE,
    ContentDiscriminator,
    DRITAttributeEncoder,
    DRITContentEncoder,
    DRITGenerator,
    DRITTranslator,
    MultiScaleDiscriminator,
)
from srunit.nn import at_least_float32
from srunit.options import MAX_COUNT, MAX_WIDTH, DataConfig, MethodOptions, ModelConfig, check_pool_option, option
from srunit.registry import METHODS

DOMAIN_DISCRIMINATORS = ("D_A", "D_A2", "D_B", "D_B2")
DISCRIMINATORS = (*DOMAIN_DISCRIMINATORS, "D_content")


@dataclass(frozen=True)
class DRITOptions(MethodOptions):
    """DRIT's loss weights, schedule and architecture options (defaults: the public code's)."""

    name: str = option("drit", "the registered method")
    nz: int = option(8, "size of the attribute code z_a")
    dis_scales: int = option(3, "scales of D_A, D_B, D_A2, D_B2 (the public --dis_scale)")
    dis_layers: int = option(
        4, "stride-2 convs per discriminator scale (the smallest scale needs 2^(scales+layers-1) px)"
    )
    content_dis_layers: int = option(3, "stride-2 7x7 convs of D_content before its 4x4 conv")
    d_iter: int = option(3, "of every d_iter steps, one full step and d_iter - 1 steps of D_content alone")
    mode_seeking: bool = option(True, "the mode seeking term and second random code (public default since 2019)")
    lambda_domain: float = option(1.0, "domain adversarial terms of the generators")
    lambda_content: float = option(1.0, "content adversarial term of the content encoders")
    lambda_cc: float = option(10.0, "cross-cycle reconstruction L1")
    lambda_recon: float = option(10.0, "self-reconstruction L1")
    lambda_latent: float = option(10.0, "latent regression L1")
    lambda_kl: float = option(0.01, "KL of the attribute code and mean square of the content code")
    lambda_ms: float = option(1.0, "mode seeking term")
    content_lr_scale: float = option(0.4, "D_content's learning rate is train.lr times this (public: lr / 2.5)")
    content_clip: float = option(5.0, "D_content's gradient norm is clipped to this")
    weight_decay: float = option(1e-4, "Adam weight decay of every network")
    pool_size: int = option(0, "cross translations D_A and D_B also see from a history (methods/pool.py); "
                               "0 = none, as the public DRIT code")

    def void_model_options(self) -> dict[str, str]:
        why = ("DRIT's networks read model.ngf and model.ndf only (their depths are method.dis_layers, "
               "method.dis_scales and method.content_dis_layers; their init is the public DRIT code's)")
        return {key: why for key in ModelConfig.__dataclass_fields__ if key not in ("ngf", "ndf")}

    def __post_init__(self) -> None:
        super().__post_init__()
        # Upper bounds: a typo's extra zeros are an error here, not an allocation of terabytes.
        for key, top in (("nz", MAX_WIDTH), ("dis_scales", 10), ("dis_layers", 10), ("d_iter", MAX_COUNT)):
            value = getattr(self, key)
            check_value(1 <= value <= top, f"method.{key}", value, f"an integer from 1 to {top}")
        check_value(0 <= self.content_dis_layers <= 10, "method.content_dis_layers", self.content_dis_layers,
                    "an integer from 0 to 10")
        for key in (
            "lambda_domain",
            "lambda_content",
            "lambda_cc",
            "lambda_recon",
            "lambda_latent",
            "lambda_kl",
            "lambda_ms",
            "weight_decay",
        ):
            check_value(getattr(self, key) >= 0, f"method.{key}", getattr(self, key), "a number >= 0")
        check_value(self.content_lr_scale > 0, "method.content_lr_scale", self.content_lr_scale, "a number > 0")
        check_value(self.content_clip > 0, "method.content_clip", self.content_clip, "a number > 0")
        check_pool_option(self.pool_size)

    def check_data(self, data: DataConfig) -> None:
        """The pool's size, and crops large enough for the discriminators (checked on every batch too, for
        images kept at their own size): a crop too small was refused at the first step, after the run folder was
        made."""
        check_pool_size(self.pool_size, data)
        if data.crops:
            self.check_side(data.crop_size, data.crop_size)

    def fits(self, side: int) -> bool:
        """Whether every network takes images with sides of `side` pixels (sizes of the public layout:
        the content code has ceil(side / 4) pixels, each stride-2 layer halves with padding)."""
        h = side
        for scale in range(self.dis_scales):  # each 4x4 stride-2 conv pads by reflection: its input needs 2 px
            if scale:
                h = -(-h // 2)
            t = h
            for _ in range(self.dis_layers):
                if t < 2:
                    return False
                t //= 2
        t = -(-side // 4)
        for _ in range(self.content_dis_layers):  # a 7x7 conv after padding by 1
            if t < 5:
                return False
            t = (t - 5) // 2 + 1
        return t >= 4 and side >= ATTRIBUTE_MIN_SIZE

    def smallest_side(self) -> tuple[int, str]:
        """The shortest side an image kept at its own size (data.preprocess none) may have, and what takes it: DRIT's
        discriminators, not the patch discriminator of model.n_layers_d."""
        smallest = next(n for n in range(1, 1 << 16) if self.fits(n))
        return smallest, (f"DRIT's discriminators take with method.dis_scales {self.dis_scales}, method.dis_layers "
                          f"{self.dis_layers} and method.content_dis_layers {self.content_dis_layers} (fewer layers "
                          f"take smaller images)")

    def check_side(self, height: int, width: int) -> None:
        """ConfigError naming the options if images of ``height`` x ``width`` are too small for the
        discriminators."""
        if not (self.fits(height) and self.fits(width)):
            smallest = next(n for n in range(1, 1 << 16) if self.fits(n))
            raise ConfigError(
                f"data.crop_size: DRIT's discriminators take images of at least {smallest}x{smallest} pixels with "
                f"method.dis_scales {self.dis_scales}, method.dis_layers {self.dis_layers} and "
                f"method.content_dis_layers {self.content_dis_layers}, got {height}x{width}; use larger crops or "
                f"fewer layers"
            )

    def void_options(self) -> dict[str, str]:
        if self.mode_seeking:
            return {}
        return {"lambda_ms": "it weighs the mode seeking term, and method.mode_seeking is false; give "
                             "method.mode_seeking true too"}


@dataclass
class Translations:
    """The images and codes of a full step; every image (B, 3, H, W), every code (B, nz)."""

    mu_a: torch.Tensor  # q(z_a | x) of the real images
    logvar_a: torch.Tensor
    mu_b: torch.Tensor
    logvar_b: torch.Tensor
    z: torch.Tensor  # random codes ~ N(0, I)
    z2: torch.Tensor | None  # the second random codes (mode seeking)
    fake_a: torch.Tensor  # G_A(z_c^B, z_a^A): the cross translation into A
    fake_b: torch.Tensor  # G_B(z_c^A, z_a^B)
    self_a: torch.Tensor  # G_A(z_c^A, z_a^A): the self reconstruction
    self_b: torch.Tensor
    random_a: torch.Tensor  # G_A(z_c^B, z)
    random_b: torch.Tensor  # G_B(z_c^A, z)
    random2_a: torch.Tensor | None  # G_A(z_c^B, z2)
    random2_b: torch.Tensor | None
    cycle_a: torch.Tensor  # the cross-cycle reconstruction of real_a
    cycle_b: torch.Tensor


@dataclass
class DRITState:
    """Tensors of one step, shared by its phases."""

    real_a: torch.Tensor  # (B, 3, H, W)
    real_b: torch.Tensor
    content_a: torch.Tensor  # z_c of real_a, (B, 4*ngf, H/4, W/4); without graph on D_content-only steps
    content_b: torch.Tensor
    translations: Translations | None  # None on the steps that update D_content alone


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """A sample mu + exp(logvar / 2) * eps of q(z_a | x), eps ~ N(0, I) drawn on mu's device."""
    return mu + (0.5 * logvar).exp() * torch.randn_like(mu)


@METHODS.register
class DRIT(PooledMethod):
    """DRIT with the concat generator: E_c, E_a, G and five discriminators.

    Widths from the model section: model.ngf is the first width of both encoders (the content code
    has 4 * ngf channels), model.ndf the first width of the domain discriminators.
    """

    Options = DRITOptions
    options: DRITOptions
    D_A: MultiScaleDiscriminator  # added by name in __init__ (DOMAIN_DISCRIMINATORS)
    D_A2: MultiScaleDiscriminator
    D_B: MultiScaleDiscriminator
    D_B2: MultiScaleDiscriminator

    def __init__(self, options: DRITOptions, model: ModelConfig) -> None:
        super().__init__(options, model)
        o = options
        self.E_c = DRITContentEncoder(ngf=model.ngf)
        self.E_a = DRITAttributeEncoder(ngf=model.ngf, nz=o.nz)
        self.G = DRITGenerator(ngf=model.ngf, nz=o.nz)
        for name in DOMAIN_DISCRIMINATORS:
            self.add_module(name, MultiScaleDiscriminator(ndf=model.ndf, n_layers=o.dis_layers, n_scales=o.dis_scales))
        self.D_content = ContentDiscriminator(channels=self.E_c.channels, n_layers=o.content_dis_layers)
        self.pools = {"A": ImagePool(o.pool_size), "B": ImagePool(o.pool_size)}  # not networks: in extra_state
        # The last full step's sample images (a plain attribute, not part of the checkpoint).
        self._last_visuals: dict[str, torch.Tensor] = {}
        self._checked_sizes: set[tuple[int, ...]] = set()

    @property
    def generator(self) -> DRITTranslator:
        """A -> B from the content of the input and the attribute code of seed 0 (see DRITTranslator)."""
        return DRITTranslator(self.E_c, self.G, self.E_a)

    def optimizer_options(self) -> dict[str, OptimizerOptions]:
        o = self.options
        return {
            name: OptimizerOptions(
                lr_scale=o.content_lr_scale if name == "D_content" else 1.0, weight_decay=o.weight_decay
            )
            for name in self.networks()
        }

    def fits(self, side: int) -> bool:
        """Whether every network takes images with sides of `side` pixels (`DRITOptions.fits`)."""
        return self.options.fits(side)

    def check_size(self, images: torch.Tensor) -> None:
        """ConfigError naming the options if the images are too small for the discriminators."""
        sides = tuple(images.shape[-2:])
        if sides in self._checked_sizes:
            return
        self.options.check_side(*sides)
        self._checked_sizes.add(sides)

    def full_step(self, ctx: StepContext) -> bool:
        """Whether step ctx.step updates every network (else D_content alone): one of every d_iter steps,
        the first of each cycle, so that every network trains from step 0."""
        return ctx.step % self.options.d_iter == 0

    # ---------------------------------------------------------------- forward
    def forward_step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> DRITState:
        real_a, real_b = batch["A"], batch["B"]
        self.check_size(real_a)
        self.check_size(real_b)
        if not self.full_step(ctx):
            with torch.no_grad():  # D_content sees the codes detached
                content_a, content_b = self.E_c(real_a, real_b)
            return DRITState(real_a, real_b, content_a, content_b, None)
        o = self.options
        n = real_a.shape[0]
        content_a, content_b = self.E_c(real_a, real_b)
        mu_a, logvar_a = self.E_a.encode_a(real_a)
        mu_b, logvar_b = self.E_a.encode_b(real_b)
        attr_a, attr_b = reparameterize(mu_a, logvar_a), reparameterize(mu_b, logvar_b)
        z = torch.randn(n, o.nz, device=real_a.device)
        z2 = torch.randn(n, o.nz, device=real_a.device) if o.mode_seeking else None
        codes = [z] if z2 is None else [z, z2]
        # Each generator in one batched pass: cross translation, self reconstruction, random code(s).
        out_a = self.G.decode_a(
            torch.cat([content_b, content_a, *[content_b] * len(codes)]), torch.cat([attr_a, attr_a, *codes])
        )
        out_b = self.G.decode_b(
            torch.cat([content_a, content_b, *[content_a] * len(codes)]), torch.cat([attr_b, attr_b, *codes])
        )
        fake_a, self_a, random_a, *random2_a = out_a.split(n)
        fake_b, self_b, random_b, *random2_b = out_b.split(n)
        # Second cross translation: codes of the translations, swapped back.
        content_fake_a, content_fake_b = self.E_c(fake_a, fake_b)  # the content of real_b, of real_a
        attr_fake_a = reparameterize(*self.E_a.encode_a(fake_a))  # the attribute of real_a
        attr_fake_b = reparameterize(*self.E_a.encode_b(fake_b))
        cycle_a = self.G.decode_a(content_fake_b, attr_fake_a)
        cycle_b = self.G.decode_b(content_fake_a, attr_fake_b)
        translations = Translations(
            mu_a,
            logvar_a,
            mu_b,
            logvar_b,
            z,
            z2,
            fake_a,
            fake_b,
            self_a,
            self_b,
            random_a,
            random_b,
            random2_a[0] if random2_a else None,
            random2_b[0] if random2_b else None,
            cycle_a,
            cycle_b,
        )
        return DRITState(real_a, real_b, content_a, content_b, translations)

    # ---------------------------------------------------------------- phases
    def phases(self, ctx: StepContext) -> list[Phase]:
        content = Phase(
            "D_content",
            self.content_discriminator_loss,
            optimizers=("D_content",),
            clip_grad_norm=self.options.content_clip,
        )
        if not self.full_step(ctx):
            return [content]
        return [
            Phase("D", self.domain_discriminator_loss, optimizers=DOMAIN_DISCRIMINATORS),
            content,
            Phase("EG", self.encoder_generator_loss, optimizers=("E_c", "E_a", "G"), frozen=DISCRIMINATORS),
            Phase("G", self.random_code_loss, optimizers=("E_c", "G"), frozen=(*DISCRIMINATORS, "E_a")),
        ]

    def domain_discriminator_loss(self, state: DRITState, ctx: StepContext) -> tuple[torch.Tensor, Logs]:
        t = _translations(state)
        logs: Logs = {}
        total = torch.zeros((), device=state.real_a.device)
        for domain, real, fake, randoms in (
            ("A", state.real_a, t.fake_a, (t.random_a, t.random2_a)),
            ("B", state.real_b, t.fake_b, (t.random_b, t.random2_b)),
        ):
            loss = self._discriminator_loss(f"D_{domain}", real, [self.pools[domain].query(fake)])
            loss2 = self._discriminator_loss(f"D_{domain}2", real, [r for r in randoms if r is not None])
            logs[f"D_{domain}"], logs[f"D_{domain}2"] = loss.detach(), loss2.detach()
            total = total + loss + loss2
        return total, logs

    def _discriminator_loss(self, name: str, real: torch.Tensor, fakes: list[torch.Tensor]) -> torch.Tensor:
        """sum over `fakes` of BCE(D(real), 1) + BCE(D(fake), 0): with two fakes the real images count twice,
        as in the public code. One batched pass (the discriminators have no normalisation)."""
        d = self.get_submodule(name)
        n = real.shape[0]
        logits = d(torch.cat([real, *(f.detach() for f in fakes)]))
        total = torch.zeros((), device=real.device)
        for i in range(len(fakes)):
            total = total + discriminator_bce([m[:n] for m in logits], [m[n * (i + 1) : n * (i + 2)] for m in logits])
        return total

    def content_discriminator_loss(self, state: DRITState, ctx: StepContext) -> tuple[torch.Tensor, Logs]:
        """BCE(D_content(z_c^A), 0) + BCE(D_content(z_c^B), 1) on the detached codes."""
        n = state.content_a.shape[0]
        logits = self.D_content(torch.cat([state.content_a, state.content_b]).detach())
        loss = bce_to(logits[:n], 0.0) + bce_to(logits[n:], 1.0)
        return loss, {"D_content": loss.detach()}

    def encoder_generator_loss(self, state: DRITState, ctx: StepContext) -> tuple[torch.Tensor, Logs]:
        o, t = self.options, _translations(state)
        terms = {
            "G_GAN_A": o.lambda_domain * bce_to(self.D_A(t.fake_a), 1.0),
            "G_GAN_B": o.lambda_domain * bce_to(self.D_B(t.fake_b), 1.0),
            "G_content_A": o.lambda_content * bce_to(self.D_content(state.content_a), 0.5),
            "G_content_B": o.lambda_content * bce_to(self.D_content(state.content_b), 0.5),
            "cycle_A": o.lambda_cc * l1(t.cycle_a, state.real_a),
            "cycle_B": o.lambda_cc * l1(t.cycle_b, state.real_b),
            "self_A": o.lambda_recon * l1(t.self_a, state.real_a),
            "self_B": o.lambda_recon * l1(t.self_b, state.real_b),
            "KL_attr_A": o.lambda_kl * kl_to_standard_normal(t.mu_a, t.logvar_a),
            "KL_attr_B": o.lambda_kl * kl_to_standard_normal(t.mu_b, t.logvar_b),
            "KL_content_A": o.lambda_kl * at_least_float32(state.content_a).square().mean(),
            "KL_content_B": o.lambda_kl * at_least_float32(state.content_b).square().mean(),
        }
        total = torch.stack(list(terms.values())).sum()
        logs: Logs = {k: v.detach() for k, v in terms.items()}
        logs["EG"] = total.detach()
        return total, logs

    def random_code_loss(self, state: DRITState, ctx: StepContext) -> tuple[torch.Tensor, Logs]:
        """The second generator update: translations of the step's images with its random codes, made
        again at the weights the EG phase left (see the module docstring)."""
        o, t = self.options, _translations(state)
        n = state.real_a.shape[0]
        content_a, content_b = self.E_c(state.real_a, state.real_b)
        codes = [t.z] if t.z2 is None else [t.z, t.z2]
        random_a = self.G.decode_a(torch.cat([content_b] * len(codes)), torch.cat(codes)).split(n)
        random_b = self.G.decode_b(torch.cat([content_a] * len(codes)), torch.cat(codes)).split(n)
        terms = {
            "G_GAN2_A": o.lambda_domain * sum(bce_to(self.D_A2(r), 1.0) for r in random_a),
            "G_GAN2_B": o.lambda_domain * sum(bce_to(self.D_B2(r), 1.0) for r in random_b),
            "latent_A": o.lambda_latent * latent_l1(self.E_a.encode_a(random_a[0])[0], t.z),
            "latent_B": o.lambda_latent * latent_l1(self.E_a.encode_b(random_b[0])[0], t.z),
        }
        if t.z2 is not None:
            terms["mode_seeking_A"] = o.lambda_ms * mode_seeking_loss(random_a[0], random_a[1], t.z, t.z2)
            terms["mode_seeking_B"] = o.lambda_ms * mode_seeking_loss(random_b[0], random_b[1], t.z, t.z2)
        values: dict[str, torch.Tensor] = {k: torch.as_tensor(v) for k, v in terms.items()}
        total = torch.stack(list(values.values())).sum()
        logs: Logs = {k: v.detach() for k, v in values.items()}
        logs["G"] = total.detach()
        return total, logs

    def visuals(self, state: DRITState) -> dict[str, torch.Tensor]:
        """On a full step: real A, its translation with B's attribute and with a random code, its cycle
        reconstruction, then the same for B. On a D_content-only step the last full step's images
        (the real images before the first full step of a process)."""
        t = state.translations
        if t is None:
            return self._last_visuals or {"real_A": state.real_a.detach(), "real_B": state.real_b.detach()}
        shown = {
            "real_A": state.real_a,
            "fake_B": t.fake_b,
            "random_B": t.random_b,
            "cycle_A": t.cycle_a,
            "real_B": state.real_b,
            "fake_A": t.fake_a,
            "random_A": t.random_a,
            "cycle_B": t.cycle_b,
        }
        self._last_visuals = {k: v.detach() for k, v in shown.items()}
        return self._last_visuals


def _translations(state: DRITState) -> Translations:
    if state.translations is None:
        raise RuntimeError("this phase needs a full step's forward pass (DRIT.full_step)")
    return state.translations
