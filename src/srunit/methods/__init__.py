"""Translation methods. Importing this package registers every built-in method."""

from srunit.methods.base import Phase, StepContext, TranslationMethod
from srunit.methods.cut import CUT, CUTOptions
from srunit.methods.srunit import SRUNIT, RobustnessOptions, SRUNITOptions

__all__ = ["CUT", "CUTOptions", "Phase", "RobustnessOptions", "SRUNIT", "SRUNITOptions", "StepContext",
           "TranslationMethod", "build_method"]


def build_method(config) -> TranslationMethod:  # noqa: ANN001 - srunit.config.Config
    """Instantiate the registered method named by `config.method.name`."""
    from srunit.registry import METHODS

    return METHODS.get(config.method.name)(config.method, config.model)
