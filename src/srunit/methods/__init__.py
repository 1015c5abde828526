"""Translation methods. Importing this package registers every built-in method."""

from srunit.methods.base import Phase, StepContext, TranslationMethod
from srunit.methods.cut import CUT, CUTOptions
from srunit.methods.cyclegan import CycleGAN, CycleGANOptions
from srunit.methods.drit import DRIT, DRITOptions
from srunit.methods.gcgan import GcGAN, GcGANOptions
from srunit.methods.lipschitz import LipschitzCUT, LipschitzCUTOptions
from srunit.methods.pool import ImagePool
from srunit.methods.regularizer import RegularizerOptions, switched_on_from_start
from srunit.methods.selfdistance import SelfDistanceCUT, SelfDistanceCUTOptions
from srunit.methods.smoothness import SmoothnessCUT, SmoothnessCUTOptions
from srunit.methods.srunit import SRUNIT, RobustnessOptions, SRUNITOptions
from srunit.options import MethodOptions, ModelConfig
from srunit.registry import METHODS

__all__ = ["CUT", "CUTOptions", "CycleGAN", "CycleGANOptions", "DRIT", "DRITOptions", "GcGAN", "GcGANOptions",
           "ImagePool", "LipschitzCUT", "LipschitzCUTOptions", "Phase", "RegularizerOptions", "RobustnessOptions",
           "SRUNIT", "SRUNITOptions", "SelfDistanceCUT", "SelfDistanceCUTOptions", "SmoothnessCUT",
           "SmoothnessCUTOptions", "StepContext", "TranslationMethod", "build_method", "switched_on_from_start"]


def build_method(options: MethodOptions, model: ModelConfig) -> TranslationMethod:
    """Instantiate the registered method named by `options.name`."""
    return METHODS.get(options.name)(options, model)
