"""Building blocks shared by the networks."""

from srunit.nn.blocks import BlurDownsample, BlurUpsample, ResnetBlock
from srunit.nn.init import init_weights

__all__ = ["BlurDownsample", "BlurUpsample", "ResnetBlock", "init_weights"]
