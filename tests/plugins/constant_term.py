"""A loss term plugin that breaks the terms' contract (tests/test_round_twenty_variants.py): its ``loss`` returns a
Python float, a constant added to the generator's loss, so the term trains nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from srunit.methods.base import Logs, StepContext
from srunit.methods.terms import FeatureNetworks, FeatureState, RegularizerOptions, Term
from srunit.options import option
from srunit.registry import TERMS


@dataclass(frozen=True)
class ConstantOptions(RegularizerOptions):
    section: ClassVar[str] = "constant"
    weight: float = option(0.1, "the coefficient of the constant")


@TERMS.register
class Constant(Term):
    Options = ConstantOptions
    options: ConstantOptions

    def loss(self, method: FeatureNetworks, state: FeatureState, ctx: StepContext, logs: Logs) -> float:  # type: ignore[override]
        return self.options.weight * 0.5
