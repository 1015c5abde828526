"""Networks: the ResNet generator, the PatchGAN discriminator, the patch feature head, DRIT's and
StegoGAN's networks and the statistics modules. Each class is registered in ``srunit.registry.NETWORKS`` under its
name. The names load their modules on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from srunit._lazy import lazy_exports

_EXPORTS = {
    "PatchDiscriminator": "srunit.networks.discriminator",
    **dict.fromkeys(["DEFAULT_FEATURE_LAYERS", "ResnetGenerator"], "srunit.networks.generator"),
    **dict.fromkeys(["PatchProjector", "gather_patches", "gather_positions", "sample_patch_ids"],
                    "srunit.networks.projection"),
    "SelfDistanceStatistics": "srunit.networks.statistics",
    **dict.fromkeys(["StegoGenerator", "StegoMaskGenerator"], "srunit.networks.stegogan"),
}
__all__ = [
    "DEFAULT_FEATURE_LAYERS", "PatchDiscriminator", "PatchProjector", "ResnetGenerator", "SelfDistanceStatistics",
    "StegoGenerator", "StegoMaskGenerator", "gather_patches", "gather_positions", "sample_patch_ids"
]
assert set(__all__) == set(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from srunit.networks.discriminator import PatchDiscriminator
    from srunit.networks.generator import DEFAULT_FEATURE_LAYERS, ResnetGenerator
    from srunit.networks.projection import PatchProjector, gather_patches, gather_positions, sample_patch_ids
    from srunit.networks.statistics import SelfDistanceStatistics
    from srunit.networks.stegogan import StegoGenerator, StegoMaskGenerator
