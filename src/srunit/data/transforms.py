"""Training-time preprocessing: resize / random crop / random flip, as in the CycleGAN/CUT code.

All randomness comes from a caller-supplied ``numpy.random.Generator``, so the output is a
pure function of (image, generator state); this is what makes data loading reproducible
across worker processes and after resuming.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from srunit.checks import check_choice, check_crop_fits, check_int, check_value
from srunit.data.images import _uint8_hwc_to_tensor, to_rgb
from srunit.options import CROP_MODES, PREPROCESS_MODES

__all__ = ["PREPROCESS_MODES", "Preprocess"]

# The generators downsample twice by 2 and upsample back, so sides must be multiples of 4.
SIZE_MULTIPLE = 4

logger = logging.getLogger("srunit.data")

# One warning per process is enough to tell the user; repeating it for every small image
# of every epoch would bury the training log.
_warned_small = False

_BICUBIC = Image.Resampling.BICUBIC


def _round_to_multiple(n: float, base: int = SIZE_MULTIPLE) -> int:
    # floor(x + 0.5) rather than round(): Python's round() sends halves to even numbers.
    return max(base, int(math.floor(n / base + 0.5)) * base)


@dataclass(frozen=True)
class Preprocess:
    """How a training image becomes a tensor.

    Modes (``mode``, config option ``data.preprocess``):
      - "resize_and_crop": resize to load_size x load_size (bicubic), random crop_size square.
      - "crop": random crop_size square from the image as is.
      - "scale_width": resize to width load_size keeping the aspect ratio, height at least
        crop_size; no crop. Both sides are then rounded to a multiple of 4.
      - "scale_width_and_crop": as "scale_width" (without the rounding), then random crop.
      - "none": no resize except rounding both sides to the nearest multiple of 4 (bicubic).
    If ``flip``, the result is mirrored left-right with probability 0.5.

    In the crop modes an image smaller than crop_size on either side is first scaled up,
    keeping its aspect ratio, just enough to fit the crop (a warning is logged once).
    """

    mode: str = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True

    def __post_init__(self) -> None:
        check_choice(self.mode, "data.preprocess", PREPROCESS_MODES)
        check_int(self.load_size, "data.load_size", 1, fix="set --data.load_size to e.g. 286")
        check_int(self.crop_size, "data.crop_size", 1, fix="set --data.crop_size to e.g. 256")
        check_crop_fits(self.mode, self.load_size, self.crop_size)
        check_value(isinstance(self.flip, (bool, np.bool_)), "data.flip", self.flip, "true or false")

    @property
    def crops(self) -> bool:
        """Whether this mode takes a random crop (and so yields crop_size x crop_size)."""
        return self.mode in CROP_MODES

    def planned_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The size (w, h) an image of ``size`` is resized to on its way to the tensor: after the mode's resize
        and, in the crop modes, after scaling up to fit the crop. The largest image this mode makes of it."""
        resized = self._resized_size(size)
        return self._fitted_size(resized) if self.crops else resized

    def _resized_size(self, size: tuple[int, int]) -> tuple[int, int]:
        w, h = size
        if self.mode == "resize_and_crop":
            return (self.load_size, self.load_size)
        if self.mode in ("scale_width", "scale_width_and_crop"):
            nh = max(self.load_size * h / w, self.crop_size)
            if self.mode == "scale_width":
                return (_round_to_multiple(self.load_size), _round_to_multiple(nh))
            return (self.load_size, int(nh))
        if self.mode == "none":
            return (_round_to_multiple(w), _round_to_multiple(h))
        return (w, h)  # "crop"

    def _resize(self, img: Image.Image) -> Image.Image:
        size = self._resized_size(img.size)
        return img if size == img.size else img.resize(size, _BICUBIC)

    def _fitted_size(self, size: tuple[int, int]) -> tuple[int, int]:
        w, h = size
        c = self.crop_size
        if w >= c and h >= c:
            return size
        s = max(c / w, c / h)
        # round() before ceil() absorbs float error so an exact fit is not bumped by one pixel.
        return (max(c, math.ceil(round(w * s, 6))), max(c, math.ceil(round(h * s, 6))))

    def _fit_crop(self, img: Image.Image) -> Image.Image:
        size = self._fitted_size(img.size)
        return img if size == img.size else img.resize(size, _BICUBIC)

    def scaled_up(self, size: tuple[int, int]) -> tuple[tuple[int, int], str, str] | None:
        """Whether an image of ``size`` (w, h) as stored is scaled up on its way to the crop, which blurs it: (its
        size (w, h) at that point, when that is, what is done), or None. The crop modes only."""
        if not self.crops:
            return None
        if self.mode != "crop" and min(size) < self.crop_size:
            # The resize modes scale every image to load_size; say so when that invents detail.
            return size, "as stored", f"resized up by data.preprocess {self.mode}"
        resized = self._resized_size(size)
        fitted = self._fitted_size(resized)
        if fitted == resized:
            return None
        return resized, "after preprocessing", f"scaling it up to {fitted[0]}x{fitted[1]} (keeping aspect ratio)"

    def __call__(self, img: Image.Image, rng: np.random.Generator, name: str | None = None, *,
                 warn_small: bool = True) -> torch.Tensor:
        """Preprocess one image.

        Args:
            img: PIL image (converted to RGB if needed).
            rng: source of all randomness (crop offsets, flip). Exactly three uniforms are
                drawn per call whatever the mode, so the stream advances predictably.
            name: file name used in warnings.
            warn_small: warn (once per process) when the image is smaller than the crop; a dataset that has
                warned of its small images from their headers (`warn_small_images`) passes False.

        Returns:
            float32 tensor (3, H, W) in [-1, 1]; H = W = crop_size in the crop modes.
        """
        u_x, u_y, u_flip = rng.random(3)
        if img.mode != "RGB":
            img = to_rgb(img)
        small = self.scaled_up(img.size) if warn_small and not _warned_small else None
        if small is not None:
            _warn_small_once(name, *small, self.crop_size)
        img = self._resize(img)
        arr = np.asarray(img, dtype=np.uint8)
        if self.crops:
            img = self._fit_crop(img)
            arr = np.asarray(img, dtype=np.uint8)
            h, w = arr.shape[:2]
            c = self.crop_size
            x = min(int(u_x * (w - c + 1)), w - c)
            y = min(int(u_y * (h - c + 1)), h - c)
            arr = arr[y:y + c, x:x + c]
        if self.flip and u_flip < 0.5:
            arr = arr[:, ::-1]
        return _uint8_hwc_to_tensor(arr)


def _warn_small_once(name: str | None, size: tuple[int, int], when: str, action: str, crop: int) -> None:
    """One warning per process for images smaller than the crop: they are scaled up, which blurs them."""
    global _warned_small
    if _warned_small:
        return
    _warned_small = True
    warn_small(name, size, when, action, crop, "Shown once; further small images are scaled silently.")


def warn_small(name: str | None, size: tuple[int, int], when: str, action: str, crop: int, tail: str) -> None:
    """The warning of an image smaller than the crop (see `Preprocess.scaled_up`), ending with ``tail``."""
    what = f"image {name}" if name else "an input image"
    logger.warning("%s is %dx%d %s, smaller than data.crop_size=%d; %s to fit the crop. Use larger images or a "
                   "smaller --data.crop_size. %s", what, size[0], size[1], when, crop, action, tail)
