"""srunit: unpaired image-to-image translation that does not flip semantics.

The Python API in one import (the names load their modules on first use, so ``import srunit``
stays light):

    from srunit import Config, Trainer, Translator, load_config

- ``load_config(preset, overrides)`` -> ``Config``: a packaged preset (``preset_names()``) or a YAML
  file, with ``section.key=value`` overrides, every value checked.
- ``Trainer(config).fit()`` trains and returns the run folder; ``Trainer.resume(run_dir)`` continues it.
- ``Translator.from_checkpoint(run_or_file)`` translates PIL images, tensors or folders.
- ``export_generator(run, "model.onnx")`` writes an ONNX file or a torch.export program (``.pt2``, no extra needed;
  TorchScript, which torch deprecates, on request), checked against PyTorch.
- ``run_benchmark``/``profile_settings`` run the SynthScapes benchmark; ``METHODS`` lists the methods.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from srunit._version import __version__

# public name -> the module that defines it
_EXPORTS = {
    "Config": "srunit.config",
    "load_config": "srunit.config",
    "preset_names": "srunit.config",
    "Trainer": "srunit.engine.trainer",
    "Translator": "srunit.inference",
    "load_generator": "srunit.inference",
    "export_generator": "srunit.export",
    "METHODS": "srunit.registry",
    "run_benchmark": "srunit.synthscapes",
    "profile_settings": "srunit.synthscapes",
    "SrunitError": "srunit.errors",
    "ConfigError": "srunit.errors",
    "DataError": "srunit.errors",
    "CheckpointError": "srunit.errors",
}

__all__ = [
    "__version__",
    "Config",
    "load_config",
    "preset_names",
    "Trainer",
    "Translator",
    "load_generator",
    "export_generator",
    "METHODS",
    "run_benchmark",
    "profile_settings",
    "SrunitError",
    "ConfigError",
    "DataError",
    "CheckpointError",
]
assert set(__all__) == {"__version__", *_EXPORTS}

if TYPE_CHECKING:
    from srunit.config import Config, load_config, preset_names
    from srunit.engine.trainer import Trainer
    from srunit.errors import CheckpointError, ConfigError, DataError, SrunitError
    from srunit.export import export_generator
    from srunit.inference import Translator, load_generator
    from srunit.registry import METHODS
    from srunit.synthscapes import profile_settings, run_benchmark


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'srunit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
