"""An existing method extended, in one file: the worked example of docs/adding-a-method.md ("Extend a method").

Two ways, from the lightest:

- a *variant*: an existing method under a name of its own with other defaults, and no code (``fastcut-spectral``
  below; srunit's own ``srunit`` is CUT with its ``robust`` term on);
- a *subclass* that overrides one piece and inherits the rest (``cut-spectral``: CUT whose discriminator's
  convolutions are spectrally normalised, Miyato et al., ICLR 2018). Its options extend CUT's by one key, and it
  keeps everything CUT has: its loss terms, its checkpoints' layout, `srunit translate` / `export` / `app`.

    SRUNIT_PLUGINS=spectral_cut PYTHONPATH=tests/plugins srunit train --method.name cut-spectral ...
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from srunit.methods import CUT, CUTOptions
from srunit.options import ModelConfig, option
from srunit.registry import METHODS


# 1. The options: CUT's, one more key, and the method's own name.
@dataclass(frozen=True)
class SpectralCUTOptions(CUTOptions):
    name: str = option("cut-spectral", "the registered method")
    spectral_norm: bool = option(True, "spectrally normalise every convolution of D (its Lipschitz constant <= 1)")


# 2. The method: CUT with one override. The networks, phases and terms are CUT's.
@METHODS.register
class SpectralCUT(CUT):
    Options = SpectralCUTOptions
    options: SpectralCUTOptions

    def __init__(self, options: SpectralCUTOptions, model: ModelConfig) -> None:
        super().__init__(options, model)
        if options.spectral_norm:
            for module in list(self.D.modules()):
                if isinstance(module, nn.Conv2d):
                    spectral_norm(module)  # weight = weight_orig / sigma, sigma by power iteration in each pass


# 3. A variant: FastCUT's settings (the `fastcut` preset's) on the spectral method, under a name of its own.
METHODS.add_variant("fastcut-spectral", "cut-spectral",
                    {"lambda_nce": 10.0, "nce_idt": False, "flip_equivariance": True},
                    "FastCUT with a spectrally normalised discriminator")
