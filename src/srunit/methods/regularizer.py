"""What the added regularisers of the ablation methods share: a weight and a switch-on point.

SRUNIT switches L_robust on after 1/4 of training (paper Sec. 5.3); the ablations of App. G
replace L_robust on the same CUT backbone, so their terms follow the same schedule by default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from srunit.methods.base import StepContext
from srunit.options import MethodOptions, check_value


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
    weight: float = 1.0  # the coefficient of the term
    start: float = 0.25  # fraction of the training steps before the term is switched on (as SRUNIT's Eq. 3)

    def __post_init__(self) -> None:
        check_value(self.weight >= 0, f"method.{self.section}.weight", self.weight, "a number >= 0")
        check_value(0.0 <= self.start <= 1.0, f"method.{self.section}.start", self.start, "a number in [0, 1]")

    def active(self, ctx: StepContext) -> bool:
        """The term is on (weight > 0) from step ``first_step(start, total_steps)`` on."""
        return self.weight > 0 and ctx.step >= first_step(self.start, ctx.total_steps)


def switched_on_from_start(options: MethodOptions) -> MethodOptions:
    """A copy of ``options`` with every added term on from step 0 (``start`` = 0 in each option section
    that has one: SRUNIT's ``robust`` and the ``RegularizerOptions`` sections); for tests and benchmarks."""
    changes = {f.name: dataclasses.replace(getattr(options, f.name), start=0.0)
               for f in dataclasses.fields(options)
               if dataclasses.is_dataclass(getattr(options, f.name)) and hasattr(getattr(options, f.name), "start")}
    return dataclasses.replace(options, **changes)
