"""Translation methods. Importing this package registers every built-in method."""

from srunit.methods.base import Phase, StepContext, TranslationMethod
from srunit.methods.cut import CUT, CUTOptions
from srunit.methods.drit import DRIT, DRITOptions
from srunit.methods.srunit import SRUNIT, RobustnessOptions, SRUNITOptions
from srunit.options import MethodOptions, ModelConfig
from srunit.registry import METHODS

__all__ = ["CUT", "CUTOptions", "DRIT", "DRITOptions", "Phase", "RobustnessOptions", "SRUNIT", "SRUNITOptions", "StepContext",
           "TranslationMethod", "build_method"]


def build_method(options: MethodOptions, model: ModelConfig) -> TranslationMethod:
    """Instantiate the registered method named by `options.name`."""
    return METHODS.get(options.name)(options, model)
