"""Loss terms that plug into a method: the contract, what they read, their shared options and schedule.

A term is one loss added to a phase of a method (SRUNIT's Eq. 3 to the G phase, ablation E6's
Lipschitz penalty to the D phase, ...). It is registered in `srunit.registry.TERMS` under the
section of the method options that configures it (``method.robust``, ``method.lipschitz``, ...): a
section that is given switches the term on, so a method whose options derive from
`srunit.options.TermMethodOptions` takes every registered term from its config, and presets combine
them without new classes (``base: srunit`` plus a ``method.lipschitz`` section is SRUNIT with E6's
penalty). A term of your own is a plugin: a file that registers a `Term` (see docs/adding-a-method.md).

A term reads a method through two small protocols, never through one method's classes:
`FeatureNetworks` (the generator with access to its feature layers, the patch head F, the
discriminator D) and `FeatureState` (the tensors of one step). CUT offers both; any method that
offers them takes the terms by calling `build_terms`, `added_loss` and the term hooks below.

SRUNIT switches L_robust on after 1/4 of training (paper Sec. 5.3); the ablations of App. G
replace L_robust on the same CUT backbone, so their terms follow the same schedule by default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import torch
from torch import nn

from srunit.checks import check_value
from srunit.errors import MethodError
from srunit.methods.base import Logs, Phase, StepContext, describe_value
from srunit.networks import PatchProjector, ResnetGenerator
from srunit.options import MethodOptions, TermMethodOptions, check_option_types, option

__all__ = ["FeatureNetworks", "FeatureState", "RegularizerOptions", "Term", "added_loss", "build_terms", "first_step",
           "switched_on_from_start"]


class FeatureState(Protocol):
    """What one step of a method gives its loss terms (CUT's ``CUTState`` is one).

    Images are (B, 3, H, W) in [-1, 1]; features are G^k_1 of the generator's feature layers k, each
    (B, C_k, H_k, W_k), with their graph.
    """

    real_a: torch.Tensor  # x, the domain-A images
    real_b: torch.Tensor  # y, the domain-B images
    fake_b: torch.Tensor  # G(x) in the frame G saw (mirrored where `flip` says)
    flip: torch.Tensor | None  # (B_total,) bool: which of G's inputs (x, then y where G saw y) it saw mirrored
    feats_fake: list[torch.Tensor] | None  # G^k_1(G(x)), once a phase of the step has computed them

    @property
    def batch_a(self) -> int:
        """B, the number of domain-A images."""
        ...

    def feats_a(self) -> list[torch.Tensor]:
        """G^k_1(x) for every feature layer k, with graph."""
        ...


class FeatureNetworks(Protocol):
    """What a method offers its loss terms: its networks, and how many positions a patch loss samples."""

    @property
    def G(self) -> ResnetGenerator:
        """The generator, with its feature layers (encode, decode_from ...)."""
        ...

    @property
    def F(self) -> PatchProjector:
        """The patch head F_k of each feature layer."""
        ...

    @property
    def D(self) -> nn.Module:
        """The discriminator of domain B: (B, 3, H, W) -> logits."""
        ...

    @property
    def num_patches(self) -> int:
        """Sampled positions per image and feature layer."""
        ...


def first_step(start: float, total_steps: int) -> int:
    """The first 0-based step of a term switched on after the fraction ``start`` of training: ceil(start * total)."""
    return int(np.ceil(start * total_steps))


@dataclass(frozen=True)
class RegularizerOptions:
    """A term weight * L added to a phase from step ceil(start * total_steps) on.

    Sub-classes name their section of ``method`` (``section``): it is the term's name in the registry
    and in configs, the option keys in error messages are ``method.SECTION.KEY``, and the method logs
    the unweighted term under SECTION.
    """

    section: ClassVar[str] = ""
    weight: float = option(1.0, "the coefficient of the term")
    start: float = option(0.25, "fraction of the training steps before the term is switched on (as SRUNIT's Eq. 3)")

    def __post_init__(self) -> None:
        check_option_types(self, f"method.{self.section}")
        check_value(self.weight >= 0, f"method.{self.section}.weight", self.weight, "a number >= 0")
        check_value(0.0 <= self.start <= 1.0, f"method.{self.section}.start", self.start, "a number in [0, 1]")

    def void_options(self) -> dict[str, str]:
        """{option name: why it has no effect} for the options the others leave without effect; see
        `srunit.options.MethodOptions.void_options`. Here: every other option of a term that never acts (weight 0,
        or switched on at the end of training, start 1); a term adds its own (`RobustnessOptions`)."""
        return self.never_acting_options()

    def never_acting_options(self, keep: tuple[str, ...] = ()) -> dict[str, str]:
        """The options of a term that never acts, but ``keep``: with weight 0 every option but the weight, with
        start 1 (the term switches on after the last step) every option but the start."""
        section = f"method.{self.section}"
        if self.weight == 0:
            off, why = "weight", f"{section}.weight is 0, so the term never acts; give {section}.weight > 0 too"
        elif self.start >= 1:
            off, why = "start", (f"{section}.start is 1, so the term switches on after the last step and never acts; "
                                 f"give {section}.start < 1 too")
        else:
            return {}
        return {f.name: why for f in dataclasses.fields(self) if f.name not in (off, *keep)}

    def start_step(self, ctx: StepContext) -> int:
        """The first step of the term: ceil(start * total_steps)."""
        return first_step(self.start, ctx.total_steps)

    def active(self, ctx: StepContext) -> bool:
        """The term is on (weight > 0) from step `start_step` on."""
        return self.weight > 0 and ctx.step >= self.start_step(ctx)


class Term:
    """One loss term of a method, built from its options section (``Options``, whose ``section`` names it).

    ``phase`` is the phase it is added to ("G": with G and F's loss, "D": with D's); ``summary`` says
    in one line what it is (the configuration reference lists it). `loss` returns the weighted term
    at a step where it is on (`active`: its options' schedule) and logs the unweighted one under the
    section's name; at other steps it is not called. A term may
    own networks (`modules`: saved in checkpoints under their names), compute statistics of the data
    before training (`prepare`), and change the phases of a step (`phases`).
    """

    Options: ClassVar[type[RegularizerOptions]]
    section: ClassVar[str]  # Options.section
    phase: ClassVar[Literal["G", "D"]] = "G"
    summary: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "Options" in vars(cls):
            cls.section = cls.Options.section

    def __init__(self, options: Any, method: FeatureNetworks) -> None:
        self.options = options

    def modules(self) -> dict[str, nn.Module]:
        """Networks of the term (registered on the method, so checkpoints hold them)."""
        return {}

    def prepare(self, method: FeatureNetworks, batches: Iterator[dict[str, torch.Tensor]]) -> None:
        """Statistics of the data before step 0 (see `TranslationMethod.prepare`); nothing by default."""

    def phases(self, method: FeatureNetworks, phases: list[Phase], ctx: StepContext) -> list[Phase]:
        """The phases of the step, changed if the term needs it; unchanged by default."""
        return phases

    def active(self, ctx: StepContext) -> bool:
        """Whether the term is on at this step (its options' schedule)."""
        return self.options.active(ctx)

    def loss(self, method: FeatureNetworks, state: FeatureState, ctx: StepContext, logs: Logs) -> torch.Tensor:
        """The weighted term of this step (a scalar tensor), called only where `active`; logs the unweighted one."""
        raise NotImplementedError


def build_terms(options: TermMethodOptions, method: nn.Module) -> dict[str, Term]:
    """The terms that ``options`` switches on, section name -> term, in the order of the registry; the
    networks of each (`Term.modules`) become networks of ``method`` (saved in its checkpoints).

    ``method`` offers `FeatureNetworks` (its ``G``, ``F``, ``D`` and ``num_patches``).
    """
    from srunit.registry import TERMS

    terms: dict[str, Term] = {}
    for section, section_options in options.terms.items():
        terms[section] = TERMS.get(section)(section_options, method)
        for name, module in terms[section].modules().items():
            method.add_module(name, module)
    return terms


def added_loss(terms: dict[str, Term], phase: str, method: FeatureNetworks, state: FeatureState, ctx: StepContext,
               logs: Logs) -> torch.Tensor:
    """The weighted sum of the terms of ``phase`` ("G" or "D") that are on at this step; a zero tensor on state's
    device without any."""
    total = torch.zeros((), device=state.real_a.device)
    for term in terms.values():
        if term.phase == phase and term.active(ctx):
            value = term.loss(method, state, ctx, logs)
            if not isinstance(value, torch.Tensor) or value.numel() != 1 or not value.is_floating_point():
                # a float added to the loss is a constant: the term trained nothing, without a word
                cls = type(term)
                raise MethodError(f"loss term {term.section!r} ({cls.__module__}.{cls.__qualname__}): its loss() "
                                  f"returned {describe_value(value)}; a term's loss() returns its weighted term as a "
                                  f"floating-point tensor of one element computed from the networks' outputs "
                                  f"(docs/adding-a-method.md)")
            total = total + value
    return total


def switched_on_from_start(options: MethodOptions) -> MethodOptions:
    """A copy of ``options`` with every added term on from step 0 (``start`` = 0 in each term section); for
    tests and benchmarks."""
    if not isinstance(options, TermMethodOptions):
        return options
    terms = {section: dataclasses.replace(term, start=0.0) for section, term in options.terms.items()}
    return dataclasses.replace(options, terms=terms)
