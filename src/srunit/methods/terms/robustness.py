"""SRUNIT's semantic robustness loss (paper Eq. 3) as a loss term, and its ablated forms (App. G).

Paper defaults: beta 1e-4, T 0.1, all K = 5 layers every step, the loss switched on after 1/4 of
training, before which the model trains exactly as CUT. Every divergence of the public code is a
separate option, and the `srunit-official` preset turns them all on. ``robust.form`` selects the
ablated forms of App. G that replace Eq. 3 (E3, E4, E5; the `e3-*`, `e4-*`, `e5-*` presets).
The computation itself is in `srunit.losses.robustness`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch

from srunit.checks import check_value
from srunit.losses import RobustnessTerms, robustness_ratios, semantic_distances
from srunit.methods.base import Logs, Phase, StepContext
from srunit.methods.terms.base import FeatureNetworks, FeatureState, RegularizerOptions, Term
from srunit.options import option
from srunit.registry import TERMS
from srunit.search import LeaveOneOut, Param

__all__ = ["RobustForm", "RobustnessOptions", "Robustness"]

# What L_robust is (App. G): eq3 = SRUNIT's (1/K) sum_k L_k; no-projector = E3, L~_k without F_k;
# eq4 = E4, L'_k of Eq. 4; semantic-consistency = E5, L_sc_k = ||F_k(G^k_1(x)) - F_k(G^k_1(G(x)))||_2.
RobustForm = Literal["eq3", "no-projector", "eq4", "semantic-consistency"]


@dataclass(frozen=True)
class RobustnessOptions(RegularizerOptions):
    """The semantic robustness loss L_robust = (1/K) sum_k L_k (Eq. 3) and its schedule."""

    section: ClassVar[str] = "robust"
    weight: float = option(1e-4, "beta, the coefficient of L_robust in the generator loss")
    max_noise: float = option(0.1, "T: |tau_k| is uniform in [min_noise, T]")
    min_noise: float = option(1e-7, "smallest |tau_k|")
    layers: tuple[int, ...] = option((0, 1, 2, 3, 4), "0-based indices into model.feature_layers")
    sample_one_layer: bool = option(False, "one random L_k per step instead of all of them")
    divide_one_layer_by_k: bool = option(False, "public code: the sampled L_k is still divided by K")
    grad: Literal["v2", "v1"] = option("v2", "v2: gradient to G and F; v1: G only")
    start: float = option(0.25, "fraction of the training steps before the loss is switched on")
    warmup: Literal["cut", "freeze"] = option("cut", "before `start`: train as CUT, or (public code) train D only")
    noise: Literal["paper", "official"] = option("paper", "official: add T * direction, divide by the drawn magnitude")
    distance_eps: float = option(0.0, "distance sqrt(||d||^2 + eps); the public code uses 1e-12")
    form: RobustForm = option(
        "eq3", "eq3 (SRUNIT) | no-projector (E3) | eq4 (E4) | semantic-consistency (E5, no noise)"
    )
    estimator: Literal["plain", "control_variate"] = option(
        "plain", "control_variate: Eq. 3's expectation, lower variance"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_value(self.min_noise > 0, "method.robust.min_noise", self.min_noise, "a number > 0")
        check_value(
            self.max_noise >= self.min_noise,
            "method.robust.max_noise",
            self.max_noise,
            f"a number >= method.robust.min_noise ({self.min_noise})",
        )
        check_value(
            len(self.layers) >= 1 and len(set(self.layers)) == len(self.layers),
            "method.robust.layers",
            self.layers,
            "distinct feature-layer indices, at least one",
        )
        check_value(self.distance_eps >= 0, "method.robust.distance_eps", self.distance_eps, "a number >= 0")
        # A value no preset sets that the form voids is refused (a preset's own void values: `void_options`).
        check_value(self.estimator == "plain" or self.form in ("eq3", "no-projector"), "method.robust.estimator",
                    self.estimator, f"plain with method.robust.form {self.form} (the control variate is one of "
                    f"Eq. 3's ratios and E3's; this form would train as with plain); leave it out")

    def void_options(self) -> dict[str, str]:
        """Options the other options leave without effect, and why: srunit-official divides its sampled layer by K,
        which with sample_one_layer false (every layer summed) changes nothing; E5 adds no noise; E3 has no F_k
        whose gradient `grad` could stop; the warm-up before a start of 0 is empty; with one layer, sampling it is
        taking it; and every option of a term that never acts (weight 0, start 1; `RegularizerOptions`). A run
        with start 1 and the public code's freezing warm-up trains D alone throughout: weight and warmup act."""
        freezes = self.warmup == "freeze" and self.weight > 0
        void = self.never_acting_options(keep=("weight", "warmup") if freezes else ())
        if self.divide_one_layer_by_k and not self.sample_one_layer:
            void["divide_one_layer_by_k"] = ("it divides the one sampled L_k by K, and method.robust.sample_one_layer "
                                             "is false (every layer is summed and divided by K); give "
                                             "method.robust.sample_one_layer true too")
        if len(self.layers) == 1:
            for key in ("sample_one_layer", "divide_one_layer_by_k"):
                void.setdefault(key, f"method.robust.layers holds one layer ({self.layers[0]}), which every step "
                                     f"takes, and K is 1; give method.robust.layers more than one layer too")
        if self.form == "semantic-consistency":
            for key in ("max_noise", "min_noise", "noise"):
                void.setdefault(key, "method.robust.form semantic-consistency (E5) adds no noise: it compares "
                                     "F_k of x's and G(x)'s features directly")
        if self.form == "no-projector":
            void.setdefault("grad", "method.robust.form no-projector (E3) compares the features without F_k, so "
                                    "there is no gradient to F to stop")
        if self.start == 0:
            void.setdefault("warmup", "method.robust.start is 0, so there is no warm-up before the loss switches on")
        return void

    def search_space(self) -> tuple[Param, ...]:
        """The paper's tuning (Sec. 5.3): beta log-uniform in [1e-5, 1e-3], T in [0.01, 0.2], K = 4 or 5 by leaving
        one of ``layers`` out, and the share of training before the loss switches on. With the public code's
        settings (``noise: official``, defaults beta = T = 1e-3) the ranges lie around those defaults instead."""
        if self.noise == "official":
            weight = Param("method.robust.weight", 1e-4, 1e-2, log=True, help="public --reg, default 1e-3")
            noise: tuple[Param, ...] = (Param("method.robust.max_noise", 1e-4, 1e-1, log=True,
                                              help="public --reg_noise, default 1e-3"),)
        else:
            weight = Param("method.robust.weight", 1e-5, 1e-3, log=True, help="beta, paper range")
            noise = (Param("method.robust.max_noise", 0.01, 0.2, help="T, paper range"),)
        if self.form == "semantic-consistency":  # E5 adds no noise
            noise = ()
        start = Param("method.robust.start", 0.0, 0.5, help="share of training before L_robust switches on")
        layers = (LeaveOneOut("method.robust.layers", self.layers, help="the layer left out of L_robust"),) \
            if len(self.layers) > 1 else ()
        return (weight, *noise, *layers, start)


@TERMS.register
class Robustness(Term):
    """beta * L_robust added to G and F's loss (``method.robust``)."""

    Options = RobustnessOptions
    phase = "G"
    summary = "SRUNIT's Eq. 3 (and App. G's E3-E5 forms), on G and F"
    options: RobustnessOptions

    def __init__(self, options: RobustnessOptions, method: FeatureNetworks) -> None:
        super().__init__(options, method)
        g = method.G
        bad = [k for k in options.layers if not 0 <= k < g.num_features]
        check_value(
            not bad,
            "method.robust.layers",
            options.layers,
            f"indices in 0..{g.num_features - 1} (model.feature_layers has {g.num_features})",
        )
        r = options
        self.terms = RobustnessTerms(
            num_patches=method.num_patches,
            max_noise=r.max_noise,
            min_noise=r.min_noise,
            official_noise=r.noise == "official",
            detach_projector=r.grad == "v1",
            distance_eps=r.distance_eps,
            project=r.form != "no-projector",
            anchor="translation" if r.form == "eq4" else "input",
            estimator=r.estimator,
        )

    def layers(self, ctx: StepContext) -> tuple[int, ...]:
        """The feature layers of this step's L_robust: all of ``layers``, or one drawn per step."""
        r = self.options
        if not r.sample_one_layer:
            return r.layers
        # A pure function of (seed, step): no device sync, and a resumed run draws the same layer.
        pick = np.random.default_rng([ctx.seed, ctx.step, 0x5C]).integers(len(r.layers))
        return (r.layers[int(pick)],)

    def phases(self, method: FeatureNetworks, phases: list[Phase], ctx: StepContext) -> list[Phase]:
        r = self.options
        # The public code's warm-up: with the loss weighted in (beta > 0) but not on yet, it updates
        # neither G nor F; with beta = 0 it trains plain CUT throughout.
        if r.warmup == "freeze" and r.weight > 0 and ctx.step < r.start_step(ctx):
            return [p for p in phases if p.name == "D"]
        return phases

    def loss(self, method: FeatureNetworks, state: FeatureState, ctx: StepContext, logs: Logs) -> torch.Tensor:
        translated = None
        r = self.options
        if r.form == "semantic-consistency" or (r.estimator == "control_variate" and r.noise == "paper"):
            # G^k_1(G(x)), in the frame G saw like feats_a: the NCE queries when the G phase computed
            # them, else one encoder pass up to the deepest layer the step uses.
            translated = state.feats_fake or method.G.encode(state.fake_b, max(self.layers(ctx)) + 1)
        loss = self.value(method, state.feats_a(), ctx, logs, translated=translated)
        logs["robust"] = loss.detach()
        return r.weight * loss

    def value(
        self,
        method: FeatureNetworks,
        feats_a: list[torch.Tensor],
        ctx: StepContext,
        logs: Logs | None = None,
        *,
        translated: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """L_robust = (1/K) sum_k L_k over the selected layers (an unbiased one-layer estimate if sampled);
        the perturbed passes of all selected layers run batched (``robustness_ratios``).

        feats_a: G^k_1(x) for every feature layer; translated: G^k_1(G(x)) (at least up to the
        deepest selected layer), needed by the form semantic-consistency (E5, no noise, no ratio) and by
        the control-variate estimator.
        With ``logs``, ``robust_median`` gets the median of the per-position ratios: the mean is
        dominated by the few positions with a tiny |tau| (see docs/methods.md), the median is not.
        """
        r = self.options
        layers = self.layers(ctx)
        feats = [feats_a[k] for k in layers]
        if r.form == "semantic-consistency":
            if translated is None:
                raise ValueError("robust.form 'semantic-consistency' needs the features of G(x) (translated=)")
            ratios = semantic_distances(method.F, layers, feats, [translated[k] for k in layers], self.terms)
        else:
            ratios = robustness_ratios(
                method.G,
                method.F,
                layers,
                feats,
                self.terms,
                translated_feats=None if translated is None else [translated[k] for k in layers],
            )
        total = torch.zeros((), device=feats_a[0].device)
        for per_position in ratios:
            total = total + per_position.mean()
        if logs is not None:
            logs["robust_median"] = torch.cat([x.detach().flatten() for x in ratios]).median()
        divisor = len(r.layers) if r.sample_one_layer and r.divide_one_layer_by_k else len(layers)
        return total / divisor
