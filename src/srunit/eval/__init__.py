"""Evaluation: segmentation scores (Sec. 5.1.1) of a folder with a pluggable segmenter, paired pixel
scores (Sec. 5.1.3-5.1.4), FID/KID, and the records results are kept in."""

from srunit.eval.fid import FidKidScores, fid_kid, frechet_distance, load_inception
from srunit.eval.paired import PairedScores, check_deltas, paired_scores, parse_deltas, pixel_distance_and_accuracy
from srunit.eval.scoring import FolderSegmentation, score_segmentation
from srunit.eval.segmentation import ConfusionMatrix, SegmentationScores, segmentation_scores
from srunit.eval.segmenters import SEGMENTER_FORMS, Segmenter, load_segmenter

__all__ = [
    "FidKidScores", "fid_kid", "frechet_distance", "load_inception",
    "PairedScores", "check_deltas", "paired_scores", "parse_deltas", "pixel_distance_and_accuracy",
    "FolderSegmentation", "score_segmentation",
    "ConfusionMatrix", "SegmentationScores", "segmentation_scores",
    "SEGMENTER_FORMS", "Segmenter", "load_segmenter",
]
