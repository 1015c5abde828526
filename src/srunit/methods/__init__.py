"""Translation methods. Importing this package registers every built-in method."""

from srunit.methods.base import Phase, StepContext, TranslationMethod
from srunit.methods.cut import CUT, CUTOptions
from srunit.methods.cyclegan import CycleGAN, CycleGANOptions
from srunit.methods.drit import DRIT, DRITOptions
from srunit.methods.gcgan import GcGAN, GcGANOptions
from srunit.methods.pool import ImagePool
from srunit.methods.srunit import SRUNIT, RobustnessOptions, SRUNITOptions
from srunit.options import MethodOptions, ModelConfig
from srunit.registry import METHODS

__all__ = ["CUT", "CUTOptions", "CycleGAN", "CycleGANOptions", "DRIT", "DRITOptions", "GcGAN", "GcGANOptions",
           "ImagePool", "Phase", "RobustnessOptions", "SRUNIT", "SRUNITOptions", "StepContext", "TranslationMethod",
           "build_method"]


def build_method(options: MethodOptions, model: ModelConfig) -> TranslationMethod:
    """Instantiate the registered method named by `options.name`."""
    return METHODS.get(options.name)(options, model)
