"""Data loading: finding and pairing image files, decoding images, label maps, preprocessing, the
unpaired dataset. The names load their modules on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from srunit._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["DEFAULT_SCAN_HINT", "IMAGE_EXTENSIONS", "index_by_stem", "pair_by_stem", "scan_images",
                     "stem_key"], "srunit.data.files"),
    **dict.fromkeys(["check_image_header", "image_size", "load_rgb", "make_grid", "pil_to_tensor", "png_bytes",
                     "save_image_grid", "save_png_atomic", "tensor_to_pil", "tensor_to_uint8", "to_rgb"],
                    "srunit.data.images"),
    **dict.fromkeys(["CITYSCAPES_CLASSES", "CITYSCAPES_TRAIN_COLOURS", "IGNORE_LABEL", "PALETTES", "colours_to_ids",
                     "load_label_map"], "srunit.data.labels"),
    **dict.fromkeys(["PREPROCESS_MODES", "Preprocess"], "srunit.data.transforms"),
    **dict.fromkeys(["EpochSampler", "UnalignedDataset", "epoch_loader"], "srunit.data.unaligned"),
}
__all__ = [
    "CITYSCAPES_CLASSES", "CITYSCAPES_TRAIN_COLOURS", "DEFAULT_SCAN_HINT", "EpochSampler", "IGNORE_LABEL",
    "IMAGE_EXTENSIONS", "PALETTES", "PREPROCESS_MODES", "Preprocess", "UnalignedDataset", "check_image_header",
    "colours_to_ids", "epoch_loader", "image_size", "index_by_stem", "load_label_map", "load_rgb", "make_grid",
    "pair_by_stem", "pil_to_tensor", "png_bytes", "save_image_grid", "save_png_atomic", "scan_images", "stem_key",
    "tensor_to_pil", "tensor_to_uint8", "to_rgb"
]
assert set(__all__) == set(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from srunit.data.files import (
        DEFAULT_SCAN_HINT,
        IMAGE_EXTENSIONS,
        index_by_stem,
        pair_by_stem,
        scan_images,
        stem_key,
    )
    from srunit.data.images import (
        check_image_header,
        image_size,
        load_rgb,
        make_grid,
        pil_to_tensor,
        png_bytes,
        save_image_grid,
        save_png_atomic,
        tensor_to_pil,
        tensor_to_uint8,
        to_rgb,
    )
    from srunit.data.labels import (
        CITYSCAPES_CLASSES,
        CITYSCAPES_TRAIN_COLOURS,
        IGNORE_LABEL,
        PALETTES,
        colours_to_ids,
        load_label_map,
    )
    from srunit.data.transforms import PREPROCESS_MODES, Preprocess
    from srunit.data.unaligned import EpochSampler, UnalignedDataset, epoch_loader
