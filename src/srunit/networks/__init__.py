"""Networks: the ResNet generator, the PatchGAN discriminator and the patch feature head."""

from srunit.networks.discriminator import PatchDiscriminator
from srunit.networks.generator import DEFAULT_FEATURE_LAYERS, ResnetGenerator
from srunit.networks.projection import PatchProjector, gather_patches, gather_positions, sample_patch_ids

__all__ = [
    "DEFAULT_FEATURE_LAYERS",
    "PatchDiscriminator",
    "PatchProjector",
    "ResnetGenerator",
    "gather_patches",
    "gather_positions",
    "sample_patch_ids",
]
