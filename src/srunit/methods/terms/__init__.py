"""Loss terms that plug into a method, one options section each (see `terms.base`), registered in
`srunit.registry.TERMS` by their section. The names load their modules on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from srunit._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["FeatureNetworks", "FeatureState", "RegularizerOptions", "Term", "added_loss", "build_terms",
                     "first_step", "switched_on_from_start"], "srunit.methods.terms.base"),
    **dict.fromkeys(["Lipschitz", "LipschitzOptions"], "srunit.methods.terms.lipschitz"),
    **dict.fromkeys(["Robustness", "RobustnessOptions"], "srunit.methods.terms.robustness"),
    **dict.fromkeys(["SelfDistance", "SelfDistanceOptions"], "srunit.methods.terms.selfdistance"),
    **dict.fromkeys(["Smoothness", "SmoothnessOptions"], "srunit.methods.terms.smoothness"),
}
__all__ = ["FeatureNetworks", "FeatureState", "Lipschitz", "LipschitzOptions", "RegularizerOptions", "Robustness",
           "RobustnessOptions", "SelfDistance", "SelfDistanceOptions", "Smoothness", "SmoothnessOptions", "Term",
           "added_loss", "build_terms", "first_step", "switched_on_from_start"]
assert set(__all__) == set(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from srunit.methods.terms.base import (
        FeatureNetworks,
        FeatureState,
        RegularizerOptions,
        Term,
        added_loss,
        build_terms,
        first_step,
        switched_on_from_start,
    )
    from srunit.methods.terms.lipschitz import Lipschitz, LipschitzOptions
    from srunit.methods.terms.robustness import Robustness, RobustnessOptions
    from srunit.methods.terms.selfdistance import SelfDistance, SelfDistanceOptions
    from srunit.methods.terms.smoothness import Smoothness, SmoothnessOptions
