"""What running a trained network needs, below the training engine: network files, checkpoint
folders, devices and precision, the translator interface and provenance. Inference, export, the
web app and the benchmarks build on this layer; `srunit.engine` (training) does too.

The names load their modules on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from srunit._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["PRECISION_DTYPES", "autocast", "precision_dtype", "resolve_device"], "srunit.runtime.device"),
    **dict.fromkeys(["build_network", "load_network", "load_network_weights", "read_network_metadata",
                     "save_network"], "srunit.runtime.network_files"),
    **dict.fromkeys(["DIRECTIONS", "LATEST", "STATE_FILE", "checkpoint_origin", "read_run_config",
                     "resolve_checkpoint", "run_method"], "srunit.runtime.checkpoints"),
    **dict.fromkeys(["attribute_batch", "attribute_from_seed", "is_multimodal", "load_translator"],
                    "srunit.runtime.translation"),
    **dict.fromkeys(["machine_description", "software_versions"], "srunit.runtime.provenance"),
}
__all__ = [
    "DIRECTIONS", "LATEST", "PRECISION_DTYPES", "STATE_FILE", "attribute_batch", "attribute_from_seed", "autocast",
    "build_network", "checkpoint_origin", "is_multimodal", "load_network", "load_network_weights",
    "load_translator", "machine_description", "precision_dtype", "read_network_metadata", "read_run_config",
    "resolve_checkpoint", "resolve_device", "run_method", "save_network", "software_versions"
]
assert set(__all__) == set(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from srunit.runtime.checkpoints import (
        DIRECTIONS,
        LATEST,
        STATE_FILE,
        checkpoint_origin,
        read_run_config,
        resolve_checkpoint,
        run_method,
    )
    from srunit.runtime.device import PRECISION_DTYPES, autocast, precision_dtype, resolve_device
    from srunit.runtime.network_files import (
        build_network,
        load_network,
        load_network_weights,
        read_network_metadata,
        save_network,
    )
    from srunit.runtime.provenance import machine_description, software_versions
    from srunit.runtime.translation import attribute_batch, attribute_from_seed, is_multimodal, load_translator
