"""Losses: pure functions of tensors (and of the networks for Eq. 3)."""

from srunit.losses.adversarial import GAN_MODES, discriminator_loss, generator_loss
from srunit.losses.patchnce import NEGATIVES, patch_nce_loss
from srunit.losses.robustness import (
    FeatureNoise,
    RobustnessTerms,
    perturb,
    robustness_layer_loss,
    robustness_ratios,
    sample_feature_noise,
    semantic_distances,
)

__all__ = [
    "GAN_MODES",
    "NEGATIVES",
    "FeatureNoise",
    "discriminator_loss",
    "generator_loss",
    "patch_nce_loss",
    "RobustnessTerms",
    "perturb",
    "robustness_layer_loss",
    "robustness_ratios",
    "sample_feature_noise",
    "semantic_distances",
]
