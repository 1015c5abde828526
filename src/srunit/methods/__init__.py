"""Translation methods: each a `TranslationMethod` registered in ``srunit.registry.METHODS`` under its
``Options.name``. The registry imports the built-in ones the first time it is asked; the names here
load their modules on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from srunit._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["OptimizerOptions", "Phase", "StepContext", "TranslationMethod"], "srunit.methods.base"),
    **dict.fromkeys(["CUT", "CUTOptions", "CUTState"], "srunit.methods.cut"),
    **dict.fromkeys(["SRUNIT", "SRUNITOptions"], "srunit.methods.srunit"),
    **dict.fromkeys(["LipschitzCUT", "LipschitzCUTOptions", "SelfDistanceCUT", "SelfDistanceCUTOptions",
                     "SmoothnessCUT", "SmoothnessCUTOptions"], "srunit.methods.ablations"),
    **dict.fromkeys(["CycleGAN", "CycleGANOptions"], "srunit.methods.cyclegan"),
    **dict.fromkeys(["DRIT", "DRITOptions"], "srunit.methods.drit"),
    **dict.fromkeys(["GcGAN", "GcGANOptions"], "srunit.methods.gcgan"),
    "ImagePool": "srunit.methods.pool",
    **dict.fromkeys(["StegoGAN", "StegoGANOptions"], "srunit.methods.stegogan"),
    **dict.fromkeys(["LipschitzOptions", "RegularizerOptions", "RobustnessOptions", "SelfDistanceOptions",
                     "SmoothnessOptions", "Term", "switched_on_from_start"], "srunit.methods.terms"),
}
__all__ = [
    "CUT", "CUTOptions", "CUTState", "CycleGAN", "CycleGANOptions", "DRIT", "DRITOptions", "GcGAN", "GcGANOptions",
    "ImagePool", "LipschitzCUT", "LipschitzCUTOptions", "LipschitzOptions", "OptimizerOptions", "Phase",
    "RegularizerOptions", "RobustnessOptions", "SRUNIT", "SRUNITOptions", "SelfDistanceCUT",
    "SelfDistanceCUTOptions", "SelfDistanceOptions", "SmoothnessCUT", "SmoothnessCUTOptions", "SmoothnessOptions",
    "StegoGAN", "StegoGANOptions", "StepContext", "Term", "TranslationMethod", "build_method",
    "switched_on_from_start"
]
assert set(__all__) == set(_EXPORTS) | {"build_method"}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


def build_method(options: Any, model: Any) -> Any:
    """Instantiate the registered method named by ``options.name`` (a `TranslationMethod`)."""
    from srunit.registry import METHODS

    return METHODS.get(options.name)(options, model)


if TYPE_CHECKING:
    from srunit.methods.ablations import (
        LipschitzCUT,
        LipschitzCUTOptions,
        SelfDistanceCUT,
        SelfDistanceCUTOptions,
        SmoothnessCUT,
        SmoothnessCUTOptions,
    )
    from srunit.methods.base import OptimizerOptions, Phase, StepContext, TranslationMethod
    from srunit.methods.cut import CUT, CUTOptions, CUTState
    from srunit.methods.cyclegan import CycleGAN, CycleGANOptions
    from srunit.methods.drit import DRIT, DRITOptions
    from srunit.methods.gcgan import GcGAN, GcGANOptions
    from srunit.methods.pool import ImagePool
    from srunit.methods.stegogan import StegoGAN, StegoGANOptions
    from srunit.methods.terms import (
        LipschitzOptions,
        RegularizerOptions,
        RobustnessOptions,
        SelfDistanceOptions,
        SmoothnessOptions,
        Term,
        switched_on_from_start,
    )
