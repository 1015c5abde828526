"""Loss terms that plug into CUT: the contract, their shared options and their schedule.

A term is one loss added to a phase of a CUT-family method (SRUNIT's Eq. 3 to the G phase, ablation
E6's Lipschitz penalty to the D phase, ...). It is configured by one section of the method's options
(``method.robust``, ``method.lipschitz``, ...): a section that is set switches the term on, so any
CUT-family method takes any term from its config, and presets combine them without new classes
(``base: srunit`` plus a ``method.lipschitz`` section is SRUNIT with E6's penalty).

SRUNIT switches L_robust on after 1/4 of training (paper Sec. 5.3); the ablations of App. G
replace L_robust on the same CUT backbone, so their terms follow the same schedule by default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from srunit.checks import check_value
from srunit.methods.base import Logs, Phase, StepContext
from srunit.options import MethodOptions, option

if TYPE_CHECKING:
    from srunit.methods.cut import CUT, CUTState

__all__ = ["RegularizerOptions", "Term", "first_step", "switched_on_from_start"]


def first_step(start: float, total_steps: int) -> int:
    """The first 0-based step of a term switched on after the fraction ``start`` of training: ceil(start * total)."""
    return int(np.ceil(start * total_steps))


@dataclass(frozen=True)
class RegularizerOptions:
    """A term weight * L added to a CUT phase from step ceil(start * total_steps) on.

    Sub-classes name their section of ``method`` (``section``): the option keys in error messages
    are ``method.SECTION.KEY``, and the method logs the unweighted term under SECTION.
    """

    section: ClassVar[str] = ""
    weight: float = option(1.0, "the coefficient of the term")
    start: float = option(0.25, "fraction of the training steps before the term is switched on (as SRUNIT's Eq. 3)")

    def __post_init__(self) -> None:
        check_value(self.weight >= 0, f"method.{self.section}.weight", self.weight, "a number >= 0")
        check_value(0.0 <= self.start <= 1.0, f"method.{self.section}.start", self.start, "a number in [0, 1]")

    def active(self, ctx: StepContext) -> bool:
        """The term is on (weight > 0) from step ``first_step(start, total_steps)`` on."""
        return self.weight > 0 and ctx.step >= first_step(self.start, ctx.total_steps)


class Term:
    """One loss term of a CUT-family method, built from its options section.

    ``phase`` is the phase it is added to ("G": with G and F's loss, "D": with D's). `loss` returns
    the weighted term (a zero tensor while it is off) and logs the unweighted one under the section's
    name. A term may own networks (`modules`: saved in checkpoints under their names), compute
    statistics of the data before training (`prepare`), and change the phases of a step (`phases`).
    """

    section: ClassVar[str]
    phase: ClassVar[Literal["G", "D"]] = "G"

    def __init__(self, options: Any, method: CUT) -> None:
        self.options = options

    def modules(self) -> dict[str, nn.Module]:
        """Networks of the term (registered on the method, so checkpoints hold them)."""
        return {}

    def prepare(self, method: CUT, batches: Iterator[dict[str, torch.Tensor]]) -> None:
        """Statistics of the data before step 0 (see `TranslationMethod.prepare`); nothing by default."""

    def phases(self, method: CUT, phases: list[Phase], ctx: StepContext) -> list[Phase]:
        """The phases of the step, changed if the term needs it; unchanged by default."""
        return phases

    def loss(self, method: CUT, state: CUTState, ctx: StepContext, logs: Logs) -> torch.Tensor:
        raise NotImplementedError


def switched_on_from_start(options: MethodOptions) -> MethodOptions:
    """A copy of ``options`` with every added term on from step 0 (``start`` = 0 in each option section
    that has one: SRUNIT's ``robust`` and the ``RegularizerOptions`` sections); for tests and benchmarks."""
    changes = {f.name: dataclasses.replace(getattr(options, f.name), start=0.0)
               for f in dataclasses.fields(options)
               if dataclasses.is_dataclass(getattr(options, f.name)) and hasattr(getattr(options, f.name), "start")}
    return dataclasses.replace(options, **changes)
