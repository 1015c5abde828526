"""CUT and FastCUT (Park et al., ECCV 2020): GAN loss + PatchNCE, one-sided, plus added loss terms.

FastCUT is this method with lambda_nce=10, no identity NCE and flip-equivariance (the `fastcut`
preset). CUT takes every loss term of `srunit.registry.TERMS` from its config (see
`srunit.methods.terms`), and its variants are CUT with one term on by default: SRUNIT (Jia et al.,
ICCV 2021) with the semantic robustness loss (Eq. 3), and the ablations E1, E2 and E6 of its App. G.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from srunit.checks import check_value
from srunit.losses import discriminator_loss, generator_loss, patch_nce_loss
from srunit.losses.adversarial import GanMode
from srunit.losses.patchnce import Negatives
from srunit.methods.base import Logs, Phase, StepContext, flip_where, patch_discriminator, resnet_generator
from srunit.methods.pool import ImagePool, PooledMethod, check_pool_size
from srunit.methods.terms.base import Term, added_loss, build_terms
from srunit.networks import PatchProjector, ResnetGenerator, sample_patch_ids
from srunit.options import MAX_PATCHES, DataConfig, ModelConfig, TermMethodOptions, check_pool_option, option
from srunit.registry import METHODS
from srunit.search import Param


@dataclass(frozen=True)
class CUTOptions(TermMethodOptions):
    """Loss weights and PatchNCE settings of CUT, and the sections of the loss terms it adds (``terms``)."""

    name: str = option("cut", "the registered method")
    gan_mode: GanMode = option("lsgan", "lsgan | vanilla | hinge")
    lambda_gan: float = option(1.0, "weight of the GAN loss of G")
    lambda_nce: float = option(1.0, "weight of PatchNCE (Eq. 2)")
    nce_idt: bool = option(True, "also NCE(y, G(y)) on domain-B images, averaged with NCE(x, G(x))")
    nce_temperature: float = option(0.07, "tau of Eq. 2")
    num_patches: int = option(256, "sampled positions per image and feature layer")
    nce_negatives: Negatives = option("image", "negatives from the same image, or the whole minibatch")
    flip_equivariance: bool = option(False, "FastCUT: G sees x flipped, its features are flipped back")
    pool_size: int = option(
        0, "generated images D also sees (methods/pool.py); 0 = none (the public CUT code has none)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_value(self.lambda_gan >= 0, "method.lambda_gan", self.lambda_gan, "a number >= 0")
        check_value(self.lambda_nce >= 0, "method.lambda_nce", self.lambda_nce, "a number >= 0")
        check_value(self.nce_temperature > 0, "method.nce_temperature", self.nce_temperature, "a number > 0")
        check_value(1 <= self.num_patches <= MAX_PATCHES, "method.num_patches", self.num_patches,
                    f"an integer from 1 to {MAX_PATCHES}")
        check_pool_option(self.pool_size)

    def check_data(self, data: DataConfig) -> None:
        check_pool_size(self.pool_size, data)

    def void_options(self) -> dict[str, str]:
        """The terms' void options (`TermMethodOptions`), and PatchNCE's own options while its weight is 0."""
        void = super().void_options()
        if self.lambda_nce == 0:
            for key in ("nce_temperature", "nce_negatives"):
                void[key] = "method.lambda_nce is 0, so PatchNCE is not computed; give method.lambda_nce > 0 too"
            # The patches are PatchNCE's, and the robustness term's (it reads the method's num_patches): void only
            # while no added term acts, as a term of a plugin may read them too.
            if all(term.never_acting_options() for term in self.terms.values()):
                void["num_patches"] = ("method.lambda_nce is 0 and no added loss term acts, so no patches are "
                                       "sampled; give method.lambda_nce > 0 too")
        return void

    def search_space(self) -> tuple[Param, ...]:
        """With Eq. 3 on (SRUNIT and its forms): the robustness term's space (`RobustnessOptions.search_space`);
        otherwise CUT's own: lambda_NCE log-uniform in [0.25, 4] around its 1 and the NCE temperature in
        [0.03, 0.2] around its 0.07 (FastCUT's lambda_NCE of 10 lies in [2.5, 40])."""
        robust = self.terms.get("robust")
        if robust is not None:
            return robust.search_space()
        low, high = (2.5, 40.0) if self.lambda_nce >= 4 else (0.25, 4.0)
        return (Param("method.lambda_nce", low, high, log=True, help="weight of PatchNCE"),
                Param("method.nce_temperature", 0.03, 0.2, log=True, help="tau of Eq. 2"))


@dataclass
class CUTState:
    """Tensors of one step, shared by the D and G phases (the `FeatureState` its loss terms read)."""

    real_a: torch.Tensor  # (B, 3, H, W)
    real_b: torch.Tensor  # (B, 3, H, W)
    fake_b: torch.Tensor  # G(x) in the frame G saw (flipped where `flip`), (B, 3, H, W)
    idt_b: torch.Tensor | None  # G(y) when nce_idt
    feats: list[torch.Tensor]  # G^k_1 of G's whole input (A then B when nce_idt), with graph
    flip: torch.Tensor | None  # (B_total,) bool: which inputs G saw flipped
    feats_fake: list[torch.Tensor] | None = None  # G^k_1(G(x)) with graph, once the G phase has computed it

    @property
    def batch_a(self) -> int:
        return self.real_a.shape[0]

    def feats_a(self) -> list[torch.Tensor]:
        return [f[: self.batch_a] for f in self.feats]


@METHODS.register
class CUT(PooledMethod):
    """Contrastive unpaired translation: G, a PatchGAN D and the patch head F, plus the added loss terms
    its options switch on (`regularizers`, section name -> term; see srunit.methods.terms). It offers the
    terms `FeatureNetworks` (G, F, D, `num_patches`) and `FeatureState` (`CUTState`)."""

    Options = CUTOptions
    options: CUTOptions

    def __init__(self, options: CUTOptions, model: ModelConfig) -> None:
        super().__init__(options, model)
        self.G = resnet_generator(model)
        self.D = patch_discriminator(model)
        self.F = PatchProjector(
            self.G.feature_channels,
            dim=model.projector_dim,
            init_gain=model.init_gain,
            init_type=model.init_type,
            normalization=model.projector_norm,
        )
        self.pools = {"B": ImagePool(options.pool_size)}  # not a network: saved by extra_state
        self.regularizers: dict[str, Term] = build_terms(options, self)  # their networks are the method's

    @property
    def generator(self) -> ResnetGenerator:
        return self.G

    @property
    def num_patches(self) -> int:
        """Sampled positions per image and feature layer, of PatchNCE and of the patch terms."""
        return self.options.num_patches

    def prepare(self, batches: Iterator[dict[str, torch.Tensor]]) -> None:
        for term in self.regularizers.values():
            term.prepare(self, batches)

    # ---------------------------------------------------------------- forward
    def forward_step(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> CUTState:
        real_a, real_b = batch["A"], batch["B"]
        real = torch.cat([real_a, real_b]) if self.options.nce_idt else real_a
        flip = None
        if self.options.flip_equivariance:
            flip = torch.rand(real.shape[0], device=real.device) < 0.5
            real = flip_where(real, flip)
        fake, feats = self.G.forward_with_features(real)
        n = real_a.shape[0]
        idt = fake[n:] if self.options.nce_idt else None
        return CUTState(real_a, real_b, fake[:n], idt, feats, flip)

    # ---------------------------------------------------------------- phases
    def phases(self, ctx: StepContext) -> list[Phase]:
        phases = [
            Phase("D", self.discriminator_loss, optimizers=("D",)),
            Phase("G", self.generator_loss, optimizers=("G", "F"), frozen=("D",)),
        ]
        for term in self.regularizers.values():
            phases = term.phases(self, phases, ctx)
        return phases

    def discriminator_loss(self, state: CUTState, ctx: StepContext) -> tuple[torch.Tensor, Logs]:
        fake_b = self.pools["B"].query(state.fake_b)
        # One batched pass: instance norm is per image, so this equals two separate passes.
        logits = self.D(torch.cat([state.real_b, fake_b]))
        real, fake = logits.split([state.real_b.shape[0], fake_b.shape[0]])
        loss = discriminator_loss(self.options.gan_mode, real, fake)
        logs: Logs = {}
        loss = loss + self.discriminator_regularization(state, ctx, logs)
        logs["D"] = loss.detach()
        return loss, logs

    def discriminator_regularization(self, state: CUTState, ctx: StepContext, logs: Logs) -> torch.Tensor:
        """The added terms of the D phase, weighted (ablation E6's Lipschitz penalty); 0 without any."""
        return self._terms("D", state, ctx, logs)

    def generator_loss(self, state: CUTState, ctx: StepContext) -> tuple[torch.Tensor, Logs]:
        o = self.options
        logs: Logs = {}
        total = torch.zeros((), device=state.real_a.device)
        if o.lambda_gan > 0:
            gan = generator_loss(o.gan_mode, self.D(state.fake_b)) * o.lambda_gan
            total = total + gan
            logs["G_GAN"] = gan.detach()
        if o.lambda_nce > 0:
            n = state.batch_a
            # G^k_1 of G(x) and G(y) in one batched pass, like the forward pass itself.
            outputs = state.fake_b if state.idt_b is None else torch.cat([state.fake_b, state.idt_b])
            queries = self.G.encode(outputs)
            state.feats_fake = [q[:n] for q in queries]
            nce = self.nce_loss(
                [f[:n] for f in state.feats],
                [q[:n] for q in queries],
                state.real_a,
                None if state.flip is None else state.flip[:n],
            )
            logs["NCE"] = nce.detach()
            if state.idt_b is not None:
                nce_y = self.nce_loss(
                    [f[n:] for f in state.feats],
                    [q[n:] for q in queries],
                    state.real_b,
                    None if state.flip is None else state.flip[n:],
                )
                logs["NCE_Y"] = nce_y.detach()
                nce = 0.5 * (nce + nce_y)
            total = total + nce
        total = total + self.regularization(state, ctx, logs)
        logs["G"] = total.detach()
        return total, logs

    def regularization(self, state: CUTState, ctx: StepContext, logs: Logs) -> torch.Tensor:
        """The added terms of the G phase, weighted (SRUNIT's Eq. 3, ablations E1-E5); 0 without any."""
        return self._terms("G", state, ctx, logs)

    def _terms(self, phase: str, state: CUTState, ctx: StepContext, logs: Logs) -> torch.Tensor:
        return added_loss(self.regularizers, phase, self, state, ctx, logs)

    def nce_loss(
        self,
        feats_in: list[torch.Tensor],
        feats_out: list[torch.Tensor],
        source: torch.Tensor,
        flip: torch.Tensor | None,
    ) -> torch.Tensor:
        """lambda_NCE * mean over layers of PatchNCE(F(G^k_1(G(x))), F(G^k_1(x))).

        feats_in: G^k_1 of what G saw, reused as keys when nothing was flipped.
        feats_out: G^k_1 of G's output (the queries), with graph.
        With flip-equivariance the keys come from the unflipped source and the query features
        of G(flip(x)) are flipped back, so that matching patches are compared.
        """
        o = self.options
        if flip is None:
            keys = [f.detach() for f in feats_in]
        else:
            with torch.no_grad():
                keys = self.G.encode(source)
        queries = [flip_where(q, flip) for q in feats_out]
        total = torch.zeros((), device=source.device)
        for k, (q, key) in enumerate(zip(queries, keys)):
            ids = sample_patch_ids(key, o.num_patches)
            with torch.no_grad():
                key_proj = self.F(k, key, ids)
            total = total + patch_nce_loss(self.F(k, q, ids), key_proj, o.nce_temperature, o.nce_negatives)
        return total * o.lambda_nce / len(queries)

    def visuals(self, state: CUTState) -> dict[str, torch.Tensor]:
        n = state.batch_a
        out = {
            "real_A": state.real_a,
            "fake_B": flip_where(state.fake_b, None if state.flip is None else state.flip[:n]),
            "real_B": state.real_b,
        }
        if state.idt_b is not None:
            out["idt_B"] = flip_where(state.idt_b, None if state.flip is None else state.flip[n:])
        return {k: v.detach() for k, v in out.items()}


# CUT's variants: a name of its own for CUT with one added term on (a config that names one may set that
# term's keys, or switch it off with `method.SECTION: null`). Their runs and reports keep these names.
METHODS.add_variant("srunit", "cut", {"robust": {}}, "SRUNIT (Jia et al., ICCV 2021): CUT + beta * L_robust (Eq. 3)")
METHODS.add_variant("cut-self-distance", "cut", {"distance": {}},
                    "ablation E1 of SRUNIT's App. G: CUT + weight * L_dist, DistanceGAN's self-distance")
METHODS.add_variant("cut-smoothness", "cut", {"smooth": {}},
                    "ablation E2 of SRUNIT's App. G: CUT + weight * L_smooth, HarmonicGAN-style smoothness")
METHODS.add_variant("cut-lipschitz", "cut", {"lipschitz": {}},
                    "ablation E6 of SRUNIT's App. G: CUT whose D also minimises weight * L_lip")
