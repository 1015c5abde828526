"""Loss terms that plug into every CUT-family method, one options section each (see `terms.base`)."""

from __future__ import annotations

from srunit.methods.terms.base import RegularizerOptions, Term, first_step, switched_on_from_start
from srunit.methods.terms.lipschitz import Lipschitz, LipschitzOptions
from srunit.methods.terms.robustness import Robustness, RobustnessOptions
from srunit.methods.terms.selfdistance import SelfDistance, SelfDistanceOptions
from srunit.methods.terms.smoothness import Smoothness, SmoothnessOptions

# The terms of a CUT-family method, in the order they are added to their phase's loss.
TERMS: tuple[type[Term], ...] = (Robustness, SelfDistance, Smoothness, Lipschitz)

__all__ = ["TERMS", "Lipschitz", "LipschitzOptions", "RegularizerOptions", "Robustness", "RobustnessOptions",
           "SelfDistance", "SelfDistanceOptions", "Smoothness", "SmoothnessOptions", "Term", "first_step",
           "switched_on_from_start"]
