"""Translation methods: each a `TranslationMethod` registered in ``srunit.registry.METHODS`` under its
``Options.name``, and the loss terms they add (``terms``, registered in ``srunit.registry.TERMS``).
SRUNIT and the ablations E1, E2 and E6 are variants of CUT (CUT with one term on). The registries
import the built-in ones the first time they are asked; the names here load their modules on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from srunit._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["OptimizerOptions", "Phase", "StepContext", "TranslationMethod"], "srunit.methods.base"),
    **dict.fromkeys(["CUT", "CUTOptions", "CUTState"], "srunit.methods.cut"),
    **dict.fromkeys(["CycleGAN", "CycleGANOptions"], "srunit.methods.cyclegan"),
    **dict.fromkeys(["DRIT", "DRITOptions"], "srunit.methods.drit"),
    **dict.fromkeys(["GcGAN", "GcGANOptions"], "srunit.methods.gcgan"),
    "ImagePool": "srunit.methods.pool",
    **dict.fromkeys(["StegoGAN", "StegoGANOptions"], "srunit.methods.stegogan"),
    **dict.fromkeys(["FeatureNetworks", "FeatureState", "RegularizerOptions", "Term", "switched_on_from_start"],
                    "srunit.methods.terms.base"),
    "LipschitzOptions": "srunit.methods.terms.lipschitz",
    "RobustnessOptions": "srunit.methods.terms.robustness",
    "SelfDistanceOptions": "srunit.methods.terms.selfdistance",
    "SmoothnessOptions": "srunit.methods.terms.smoothness",
}
__all__ = [
    "CUT", "CUTOptions", "CUTState", "CycleGAN", "CycleGANOptions", "DRIT", "DRITOptions", "FeatureNetworks",
    "FeatureState", "GcGAN", "GcGANOptions", "ImagePool", "LipschitzOptions", "OptimizerOptions", "Phase",
    "RegularizerOptions", "RobustnessOptions", "SelfDistanceOptions", "SmoothnessOptions", "StepContext", "Term",
    "StegoGAN", "StegoGANOptions", "TranslationMethod", "build_method", "switched_on_from_start"
]
assert set(__all__) == set(_EXPORTS) | {"build_method"}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


def build_method(options: Any, model: Any) -> Any:
    """Instantiate the registered method named by ``options.name`` (a `TranslationMethod`; a variant's name
    builds its base method)."""
    from srunit.options import MethodOptions, ModelConfig
    from srunit.registry import METHODS

    # A preset name or a dict was an AttributeError from inside a network's constructor.
    if not isinstance(options, MethodOptions):
        raise TypeError(f"build_method: options must be a method's options (e.g. srunit.methods.CUTOptions(), or "
                        f"load_config(preset).method), got {type(options).__name__} {options!r:.80}")
    if not isinstance(model, ModelConfig):
        raise TypeError(f"build_method: model must be a srunit.options.ModelConfig (load_config(preset).model), got "
                        f"{type(model).__name__} {model!r:.80}")
    return METHODS.get(options.name)(options, model)


if TYPE_CHECKING:
    from srunit.methods.base import OptimizerOptions, Phase, StepContext, TranslationMethod
    from srunit.methods.cut import CUT, CUTOptions, CUTState
    from srunit.methods.cyclegan import CycleGAN, CycleGANOptions
    from srunit.methods.drit import DRIT, DRITOptions
    from srunit.methods.gcgan import GcGAN, GcGANOptions
    from srunit.methods.pool import ImagePool
    from srunit.methods.stegogan import StegoGAN, StegoGANOptions
    from srunit.methods.terms.base import (
        FeatureNetworks,
        FeatureState,
        RegularizerOptions,
        Term,
        switched_on_from_start,
    )
    from srunit.methods.terms.lipschitz import LipschitzOptions
    from srunit.methods.terms.robustness import RobustnessOptions
    from srunit.methods.terms.selfdistance import SelfDistanceOptions
    from srunit.methods.terms.smoothness import SmoothnessOptions
