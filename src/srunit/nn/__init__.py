"""Building blocks shared by the networks."""

from srunit.nn.blocks import BlurDownsample, BlurUpsample, ReflectionPad2d, ResnetBlock, reflect_pad
from srunit.nn.init import init_weights

__all__ = ["BlurDownsample", "BlurUpsample", "ReflectionPad2d", "ResnetBlock", "init_weights", "reflect_pad"]
