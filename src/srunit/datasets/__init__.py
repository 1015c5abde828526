"""Building data sets: unmatched-statistics splits (paper App. C, D), label maps, and conversions of
public downloads (Cityscapes, pix2pix side-by-side images)."""

from srunit.datasets.cityscapes import (
    CITYSCAPES_CLASSES,
    CITYSCAPES_LABEL_TO_TRAIN_ID,
    CITYSCAPES_TRAIN_COLOURS,
    label_ids_to_train_ids,
    prepare_cityscapes,
)
from srunit.datasets.labels import IGNORE_LABEL, PALETTES, colours_to_ids, load_label_map
from srunit.datasets.output import require_empty_output
from srunit.datasets.pix2pix import split_side_by_side
from srunit.datasets.split import (
    SPLIT_MODES,
    SplitResult,
    class_histograms,
    grey_histograms,
    split_by_histogram,
    split_by_ratio,
    split_folders,
    write_split,
)

__all__ = [
    "CITYSCAPES_CLASSES", "CITYSCAPES_LABEL_TO_TRAIN_ID", "CITYSCAPES_TRAIN_COLOURS", "label_ids_to_train_ids",
    "prepare_cityscapes", "IGNORE_LABEL", "PALETTES", "colours_to_ids", "load_label_map", "require_empty_output",
    "split_side_by_side", "SPLIT_MODES", "SplitResult", "class_histograms", "grey_histograms", "split_by_histogram",
    "split_by_ratio", "split_folders", "write_split",
]
