"""Data loading: finding and pairing image files, decoding images, preprocessing, the unpaired dataset."""

from srunit.data.files import DEFAULT_SCAN_HINT, IMAGE_EXTENSIONS, index_by_stem, pair_by_stem, scan_images, stem_key
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
from srunit.data.transforms import PREPROCESS_MODES, Preprocess
from srunit.data.unaligned import EpochSampler, UnalignedDataset, epoch_loader

__all__ = [
    "DEFAULT_SCAN_HINT", "IMAGE_EXTENSIONS", "scan_images", "stem_key", "index_by_stem", "pair_by_stem",
    "check_image_header", "image_size", "load_rgb", "to_rgb", "pil_to_tensor", "tensor_to_pil", "tensor_to_uint8",
    "make_grid", "save_image_grid", "png_bytes", "save_png_atomic",
    "PREPROCESS_MODES", "Preprocess",
    "UnalignedDataset", "EpochSampler", "epoch_loader",
]
