"""Building blocks shared by the networks."""

from srunit.nn.blocks import BlurDownsample, BlurUpsample, ReflectionPad2d, ResnetBlock, reflect_pad
from srunit.nn.init import init_weights
from srunit.nn.precision import at_least_float32

__all__ = [
    "at_least_float32",
    "BlurDownsample",
    "BlurUpsample",
    "ReflectionPad2d",
    "ResnetBlock",
    "init_weights",
    "reflect_pad",
]
