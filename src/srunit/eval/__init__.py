"""Evaluation metrics: segmentation scores (Sec. 5.1.1), paired pixel scores (Sec. 5.1.3-5.1.4), FID/KID."""

from srunit.eval.fid import FidKidScores, fid_kid, frechet_distance, load_inception

from srunit.eval.paired import (
    PairedScores,
    pair_by_stem,
    paired_scores,
    pixel_distance_and_accuracy,
)
from srunit.eval.segmentation import (
    CITYSCAPES_CLASSES,
    ConfusionMatrix,
    SegmentationScores,
    segmentation_scores,
)
from srunit.eval.segmenters import SEGMENTER_FORMS, Segmenter, load_segmenter

__all__ = [
    "FidKidScores",
    "fid_kid",
    "frechet_distance",
    "load_inception",
    "CITYSCAPES_CLASSES",
    "SEGMENTER_FORMS",
    "ConfusionMatrix",
    "PairedScores",
    "SegmentationScores",
    "Segmenter",
    "load_segmenter",
    "pair_by_stem",
    "paired_scores",
    "pixel_distance_and_accuracy",
    "segmentation_scores",
]
