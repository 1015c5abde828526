"""Label maps: reading class-id maps from files and turning label colour images into class ids, with the
Cityscapes class names and colours they are read by."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from srunit._reading import check_regular_file
from srunit.checks import DEFAULT_MAX_PIXELS
from srunit.errors import ConfigError, DataError

__all__ = ["CITYSCAPES_CLASSES", "CITYSCAPES_TRAIN_COLOURS", "IGNORE_LABEL", "PALETTES", "colours_to_ids",
           "load_label_map"]

IGNORE_LABEL = 255

# The 19 Cityscapes evaluation classes in train-id order (train id i = CITYSCAPES_CLASSES[i]).
CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)

# Colours of the 19 train classes in Cityscapes' *_gtFine_color.png files (same benchmark
# convention), indexed by train id.
CITYSCAPES_TRAIN_COLOURS: tuple[tuple[int, int, int], ...] = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70),
    (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
)
# Colour conventions of label images that `load_label_map` reads as class ids: name -> colour of id i.
PALETTES: dict[str, tuple[tuple[int, int, int], ...]] = {"cityscapes": CITYSCAPES_TRAIN_COLOURS}


def colours_to_ids(rgb: np.ndarray, colours: Sequence[Sequence[int]] | np.ndarray, ignore: int = IGNORE_LABEL
                   ) -> np.ndarray:
    """Map a label colour image to class ids: pixel colour ``colours[i]`` -> ``i``, any other colour -> ``ignore``.

    Args:
        rgb: (H, W, 3) uint8 colour image.
        colours: (C, 3) RGB colour of each class id, all distinct.

    Returns:
        (H, W) uint8 class ids.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) colour array, got shape {rgb.shape}")
    weights = np.array([1 << 16, 1 << 8, 1], dtype=np.int64)
    code = rgb.astype(np.int64) @ weights  # one integer per colour, so the lookup is a sorted search
    table = np.asarray(colours, dtype=np.int64) @ weights
    order = np.argsort(table)
    pos = np.clip(np.searchsorted(table[order], code), 0, len(table) - 1)
    hit = table[order][pos] == code
    return np.where(hit, order[pos], ignore).astype(np.uint8)


# Image formats whose compression is always lossy (JPEG; MPO is a camera's multi-picture JPEG).
LOSSY_FORMATS = frozenset({"JPEG", "MPO"})
# TIFF compressions (Pillow's names) that are lossy: JPEG inside a TIFF moves ids as a .jpg does. (WebP inside a
# TIFF is lossy unless libtiff's WEBP_LOSSLESS tag, 65569, is set.)
LOSSY_TIFF_COMPRESSIONS = frozenset({"jpeg", "tiff_jpeg"})
TIFF_WEBP_LOSSLESS_TAG = 65569


def _webp_is_lossy(path: Path) -> bool:
    """Whether the WebP file holds a lossy ('VP8 ') bitstream rather than a lossless ('VP8L') one: the RIFF chunks
    after the 12-byte header are read up to the first bitstream chunk (an extended file's 'VP8X', 'ICCP', 'ALPH' ...
    come first)."""
    with open(path, "rb") as f:
        f.seek(12)
        while len(header := f.read(8)) == 8:
            fourcc, size = header[:4], int.from_bytes(header[4:], "little")
            if fourcc in (b"VP8 ", b"VP8L", b"ANMF"):
                return fourcc != b"VP8L"  # an animation's frames are refused as lossy too: no label map is animated
            f.seek(size + (size & 1), 1)
    return False


def _lossy_compression(img: Image.Image, path: Path) -> str | None:
    """What names the lossy compression of the opened image ``img`` (read from ``path``), or None where it is
    stored losslessly: a JPEG file, JPEG inside a TIFF, a lossy WebP."""
    if img.format in LOSSY_FORMATS:
        return f"a {img.format} file"
    if img.format == "TIFF":
        compression = img.info.get("compression")
        lossless_webp = getattr(img, "tag_v2", {}).get(TIFF_WEBP_LOSSLESS_TAG) == 1
        if compression in LOSSY_TIFF_COMPRESSIONS or (compression == "webp" and not lossless_webp):
            return f"a TIFF file of {compression} compression"
    if img.format == "WEBP" and _webp_is_lossy(path):
        return "a lossy WebP file"
    return None


def load_label_map(path: Path, *, palette: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read a label map file as an (H, W) int64 class-id array.

    Single-channel files ("L", "P", "I", "I;16") are read as stored ids (for palette PNGs the
    palette index is the id). Colour files need a ``palette`` of ``PALETTES``: "cityscapes" maps
    the 19 Cityscapes train colours to train ids 0..18 and every other colour to 255.

    Raises:
        DataError: unreadable file, a colour file without a palette, a file in a lossy format (JPEG, JPEG inside a
            TIFF, lossy WebP), or more than ``max_pixels`` pixels (checked from the header, before decoding).
        ConfigError: unknown palette name.
    """
    path = Path(path)
    if palette is not None and palette not in PALETTES:
        raise ConfigError(f"--palette {palette!r} is unknown; use --palette {' or '.join(PALETTES)} or leave it out")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            check_regular_file(path, "label map", fix="give a PNG of class ids")
            img = Image.open(path)
        with img:
            w, h = img.size
            if w * h > max_pixels:
                raise DataError(f"label map {path} is {w} x {h} = {w * h:,} pixels, more than the limit of "
                                f"{max_pixels:,}; shrink it (with nearest-neighbour resampling) or replace the file")
            lossy = _lossy_compression(img, path)
            if lossy is not None:
                # Lossy compression moves values at every edge: ids change into other classes' ids (or ids of no
                # class) along each boundary, and every score counts them without a word.
                raise DataError(f"label map {path} is {lossy}, whose lossy compression changes class ids "
                                f"along every edge; save label maps losslessly as PNG (from the original ids, not "
                                f"from this file)")
            img.load()
            # Turned by its EXIF orientation as `load_rgb` turns the image it labels (and every viewer shows it):
            # read as stored, a label map tagged like its photo lay on its side under the turned photo.
            turned: Image.Image = ImageOps.exif_transpose(img) or img
            mode = turned.mode
            if mode in ("RGB", "RGBA"):
                if palette is None:
                    raise DataError(f"label map {path} is a colour image (mode {mode}); label maps must be "
                                    f"single-channel class-id PNGs (e.g. Cityscapes *_labelTrainIds.png), or "
                                    f"Cityscapes colour labels with --palette cityscapes where the command has it")
                return colours_to_ids(np.asarray(turned.convert("RGB")), PALETTES[palette]).astype(np.int64)
            if mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L", "I;16N"):
                raise DataError(f"label map {path} has image mode {mode}; save it as an 8-bit grayscale PNG of "
                                f"class ids")
            return np.asarray(turned).astype(np.int64)
    except DataError:
        raise
    except Image.DecompressionBombError as e:  # PIL's own limit, far above ours, refused the header
        raise DataError(f"label map {path} has more than the limit of {max_pixels:,} pixels ({e}); shrink it (with "
                        f"nearest-neighbour resampling) or replace the file") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot read label map {path} ({type(e).__name__}: {e}); replace or remove the file") from e
