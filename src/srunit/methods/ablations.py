"""The ablations of SRUNIT's App. G that replace L_robust by another term on CUT, as methods:
E1 (`cut-self-distance`), E2 (`cut-smoothness`) and E6 (`cut-lipschitz`). E3-E5 are forms of the
robustness term itself (`srunit` with ``robust.form``). Each method is CUT with one term's section
on by default; the terms are in `srunit.methods.terms`.
"""

from __future__ import annotations

from dataclasses import dataclass

from srunit.methods.cut import CUT, CUTOptions
from srunit.methods.terms import LipschitzOptions, SelfDistanceOptions, SmoothnessOptions
from srunit.options import option
from srunit.registry import METHODS

__all__ = ["LipschitzCUT", "LipschitzCUTOptions", "SelfDistanceCUT", "SelfDistanceCUTOptions", "SmoothnessCUT",
           "SmoothnessCUTOptions"]


@dataclass(frozen=True)
class SelfDistanceCUTOptions(CUTOptions):
    name: str = option("cut-self-distance", "the registered method")
    distance: SelfDistanceOptions | None = option(help="E1's term, on by default", default_factory=SelfDistanceOptions)


@METHODS.register
class SelfDistanceCUT(CUT):
    """CUT + weight * L_dist (ablation E1)."""

    Options = SelfDistanceCUTOptions
    options: SelfDistanceCUTOptions


@dataclass(frozen=True)
class SmoothnessCUTOptions(CUTOptions):
    name: str = option("cut-smoothness", "the registered method")
    smooth: SmoothnessOptions | None = option(help="E2's term, on by default", default_factory=SmoothnessOptions)


@METHODS.register
class SmoothnessCUT(CUT):
    """CUT + weight * L_smooth (ablation E2)."""

    Options = SmoothnessCUTOptions
    options: SmoothnessCUTOptions


@dataclass(frozen=True)
class LipschitzCUTOptions(CUTOptions):
    name: str = option("cut-lipschitz", "the registered method")
    lipschitz: LipschitzOptions | None = option(help="E6's term, on by default", default_factory=LipschitzOptions)


@METHODS.register
class LipschitzCUT(CUT):
    """CUT whose D minimises its GAN loss + weight * L_lip (ablation E6)."""

    Options = LipschitzCUTOptions
    options: LipschitzCUTOptions
