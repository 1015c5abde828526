"""Data loading: image files, preprocessing, the unpaired dataset and the synthetic dataset."""

from srunit.data.images import (
    IMAGE_EXTENSIONS,
    check_image_header,
    load_rgb,
    make_grid,
    pil_to_tensor,
    save_image_grid,
    save_png_atomic,
    scan_images,
    tensor_to_pil,
    tensor_to_uint8,
    to_rgb,
)
from srunit.data.synthetic import (
    CLASS_NAMES,
    PALETTE,
    TRAIN_A_VEGETATION_BIAS,
    TRAIN_B_VEGETATION_BIAS,
    class_fractions,
    colors_to_labels,
    dataset_layout,
    make_synthetic_dataset,
    render_labels,
    render_photo,
    sample_layout,
)
from srunit.data.transforms import PREPROCESS_MODES, Preprocess
from srunit.data.unaligned import EpochSampler, UnalignedDataset

__all__ = [
    "IMAGE_EXTENSIONS", "scan_images", "check_image_header", "load_rgb", "to_rgb",
    "pil_to_tensor", "tensor_to_pil", "tensor_to_uint8", "make_grid", "save_image_grid",
    "save_png_atomic",
    "PREPROCESS_MODES", "Preprocess",
    "UnalignedDataset", "EpochSampler",
    "CLASS_NAMES", "PALETTE", "TRAIN_A_VEGETATION_BIAS", "TRAIN_B_VEGETATION_BIAS",
    "sample_layout", "dataset_layout", "render_labels", "render_photo", "colors_to_labels",
    "class_fractions", "make_synthetic_dataset",
]
