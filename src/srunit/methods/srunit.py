"""SRUNIT (Jia et al., ICCV 2021): CUT plus the semantic robustness loss (Eq. 3).

The method is CUT with its ``robust`` section on by default; the loss itself is the term
`srunit.methods.terms.robustness.Robustness`, which any CUT-family method can take.
"""

from __future__ import annotations

from dataclasses import dataclass

from srunit.methods.cut import CUT, CUTOptions
from srunit.methods.terms.robustness import RobustnessOptions
from srunit.options import option
from srunit.registry import METHODS

__all__ = ["SRUNIT", "SRUNITOptions"]


@dataclass(frozen=True)
class SRUNITOptions(CUTOptions):
    name: str = option("srunit", "the registered method")
    robust: RobustnessOptions | None = option(help="beta * L_robust, on by default", default_factory=RobustnessOptions)


@METHODS.register
class SRUNIT(CUT):
    """CUT + beta * L_robust."""

    Options = SRUNITOptions
    options: SRUNITOptions
