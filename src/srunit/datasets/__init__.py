"""Building data sets: unmatched-statistics splits (paper App. C, D), mismatch splits (a class in domain B
only, StegoGAN's setting), and conversions of public downloads (Cityscapes, pix2pix side-by-side images);
label maps are read by `srunit.data.labels`. The names load their modules on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from srunit._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["CITYSCAPES_LABEL_TO_TRAIN_ID", "label_ids_to_train_ids", "prepare_cityscapes"],
                    "srunit.datasets.cityscapes"),
    **dict.fromkeys(["CITYSCAPES_CLASSES", "CITYSCAPES_TRAIN_COLOURS", "IGNORE_LABEL", "PALETTES", "colours_to_ids",
                     "load_label_map"], "srunit.data.labels"),
    "require_empty_output": "srunit.datasets.output",
    **dict.fromkeys(["MismatchSplit", "mismatch_split", "plan_mismatch", "resolve_class"], "srunit.datasets.mismatch"),
    "split_side_by_side": "srunit.datasets.pix2pix",
    **dict.fromkeys(["SPLIT_MODES", "SplitResult", "class_histograms", "grey_histograms", "place_files",
                     "split_by_histogram", "split_by_ratio", "split_folders", "write_split"], "srunit.datasets.split"),
}
__all__ = [
    "CITYSCAPES_CLASSES", "CITYSCAPES_LABEL_TO_TRAIN_ID", "CITYSCAPES_TRAIN_COLOURS", "IGNORE_LABEL", "MismatchSplit",
    "PALETTES", "SPLIT_MODES", "SplitResult", "class_histograms", "colours_to_ids", "grey_histograms",
    "label_ids_to_train_ids", "load_label_map", "mismatch_split", "place_files", "plan_mismatch", "prepare_cityscapes",
    "require_empty_output", "resolve_class", "split_by_histogram", "split_by_ratio", "split_folders",
    "split_side_by_side", "write_split"
]
assert set(__all__) == set(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from srunit.data.labels import (
        CITYSCAPES_CLASSES,
        CITYSCAPES_TRAIN_COLOURS,
        IGNORE_LABEL,
        PALETTES,
        colours_to_ids,
        load_label_map,
    )
    from srunit.datasets.cityscapes import CITYSCAPES_LABEL_TO_TRAIN_ID, label_ids_to_train_ids, prepare_cityscapes
    from srunit.datasets.mismatch import MismatchSplit, mismatch_split, plan_mismatch, resolve_class
    from srunit.datasets.output import require_empty_output
    from srunit.datasets.pix2pix import split_side_by_side
    from srunit.datasets.split import (
        SPLIT_MODES,
        SplitResult,
        class_histograms,
        grey_histograms,
        place_files,
        split_by_histogram,
        split_by_ratio,
        split_folders,
        write_split,
    )
