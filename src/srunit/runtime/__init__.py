"""What running a trained network needs, below the training engine: network files, the run folder
(every file name of a run, and what a checkpoint path a user passes is), devices and precision, the
translator interface and provenance. Inference, export, the
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
    **dict.fromkeys(["DIRECTIONS", "LATEST", "STATE_FILE", "CheckpointSource", "RunFolder", "is_run_folder",
                     "resolve_checkpoint"], "srunit.runtime.run_folder"),
    **dict.fromkeys(["attribute_batch", "attribute_from_seed", "is_multimodal", "load_translator"],
                    "srunit.runtime.translation"),
    **dict.fromkeys(["machine_description", "software_versions"], "srunit.runtime.provenance"),
}
__all__ = [
    "DIRECTIONS", "LATEST", "PRECISION_DTYPES", "STATE_FILE", "CheckpointSource", "RunFolder", "attribute_batch",
    "attribute_from_seed", "autocast", "build_network", "is_multimodal", "is_run_folder", "load_network",
    "load_network_weights", "load_translator", "machine_description", "precision_dtype", "read_network_metadata",
    "resolve_checkpoint", "resolve_device", "save_network", "software_versions"
]
assert set(__all__) == set(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from srunit.runtime.device import PRECISION_DTYPES, autocast, precision_dtype, resolve_device
    from srunit.runtime.network_files import (
        build_network,
        load_network,
        load_network_weights,
        read_network_metadata,
        save_network,
    )
    from srunit.runtime.provenance import machine_description, software_versions
    from srunit.runtime.run_folder import (
        DIRECTIONS,
        LATEST,
        STATE_FILE,
        CheckpointSource,
        RunFolder,
        is_run_folder,
        resolve_checkpoint,
    )
    from srunit.runtime.translation import attribute_batch, attribute_from_seed, is_multimodal, load_translator
