"""Image files: decoding to RGB, converting to/from tensors, writing PNGs and sample grids.

Pixel convention used everywhere in srunit: float tensors of shape (3, H, W) with values in
[-1, 1], where -1 is black (0) and 1 is white (255) in 8-bit terms.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import threading
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from srunit._atomic import write_bytes_atomic
from srunit._reading import check_regular_file
from srunit.checks import DEFAULT_MAX_PIXELS
from srunit.errors import DataError

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "PixelLimitTally",
    "check_pixels",
    "image_size",
    "load_rgb",
    "to_rgb",
    "warn_of_several_frames",
    "check_image_header",
    "pil_to_tensor",
    "tensor_to_pil",
    "tensor_to_uint8",
    "make_grid",
    "save_image_grid",
    "png_bytes",
    "save_png_atomic",
]

# The training loader's advice; other commands have no data.* options, so the defaults below name none.
SKIP_HINT = (
    "replace or delete the file, or pass --data.skip_bad_images true to skip unreadable images"
)
FILE_FIX = "replace or delete the file"

# Errors PIL raises for files that are not images or are damaged. SyntaxError and
# struct.error-like ValueErrors come from some format plugins on malformed headers.
_PIL_READ_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
                    Image.DecompressionBombError)

# LOAD_TRUNCATED_IMAGES is a process-wide PIL flag that other libraries sometimes switch on;
# it makes truncated files decode silently as partly grey images. We force it off while we
# decode, and the lock keeps concurrent loader threads from restoring it too early.
_TRUNCATED_FLAG_LOCK = threading.Lock()


_ORIENTATION = 0x0112  # the EXIF orientation tag
_QUARTER_TURNS = frozenset({5, 6, 7, 8})  # orientations that swap width and height


def _orientation(img: Image.Image) -> int | None:
    """The EXIF orientation of an opened image from what its header holds, never decoding pixels (a PNG's getexif
    would load the image to look for an eXIf chunk after the pixel data; its chunk before them is in ``info``)."""
    try:
        if img.format == "PNG":
            raw = img.info.get("exif")
            if not raw:
                return None
            exif = Image.Exif()
            exif.load(raw)
            return exif.get(_ORIENTATION)
        return img.getexif().get(_ORIENTATION)
    except (OSError, SyntaxError, ValueError, struct.error):  # a damaged EXIF block: the pixels as stored
        return None


class TooManyPixels(DataError):
    """An image file refused from its header for its number of pixels (``pixels``).

    ``need`` is the value of ``option`` that lets the file through (None where no limit can: Pillow's own);
    ``statement`` says what is wrong without the fix and ``ways`` the fix other than the option.
    """

    def __init__(self, message: str, pixels: int, *, path: Path | None = None, need: int | None = None,
                 option: str | None = None, statement: str = "", ways: str = "shrink it") -> None:
        super().__init__(message)
        self.pixels, self.path, self.need, self.option = pixels, path, need, option
        self.statement, self.ways = statement, ways


class PixelLimitTally:
    """The images of one scan over a pixel limit, refused in one error once the scan is done.

    Refused one by one, the advice `pass --max-pixels N` let the first file through and met the next, larger one:
    the command was refused again with another N. The error names the first file, how many more are over the
    limit and the value that lets every one of them through.
    """

    def __init__(self) -> None:
        self.refused: list[TooManyPixels] = []

    def check(self, error: TooManyPixels) -> None:
        """Note ``error``; one that no limit can lift (``need`` None) is raised at once."""
        if error.need is None or error.option is None or not error.statement:
            raise error
        self.refused.append(error)

    def raise_if_any(self) -> None:
        if not self.refused:
            return
        first = self.refused[0]
        if len(self.refused) == 1:
            raise first
        largest = max(self.refused, key=lambda e: e.need or 0)  # the first of the largest
        more = len(self.refused) - 1
        which = "none larger" if largest is first else f"the largest: {largest.path}, {largest.pixels:,} pixels"
        raise TooManyPixels(
            f"{first.statement}, and {more} more file{'s are' if more > 1 else ' is'} over it ({which}); "
            f"{first.ways.replace(' it', ' them')}, or pass "
            f"{first.option} {largest.need} to allow them all (memory grows with the pixels)",
            largest.pixels, path=largest.path, need=largest.need, option=first.option)


def _too_many_pixels(path: Path, error: Image.DecompressionBombError, max_pixels: int | None, fix: str) -> DataError:
    """Pillow's own refusal of a header of more than 2 * ``Image.MAX_IMAGE_PIXELS`` pixels (before srunit's limit
    is checked), said as srunit says its limit: the size, the limit and no advice to raise a limit Pillow keeps."""
    match = re.search(r"\((\d+) pixels\)", str(error))
    if match is None:
        return DataError(f"cannot read image file {path}: {_reason(error)}; {fix}")
    pixels, most = int(match.group(1)), 2 * (Image.MAX_IMAGE_PIXELS or 0)
    limit = f"the limit of {max_pixels:,}" if max_pixels is not None and max_pixels < most else \
        f"{most:,}, the most Pillow reads (its decompression-bomb limit)"
    return TooManyPixels(f"image file {path} is {pixels:,} pixels, more than {limit}; shrink it (memory grows with "
                         f"the pixels)", pixels)


class ImageHeader(NamedTuple):
    """What an image file's header says: its size as `load_rgb` gives it, and whether more frames follow."""

    size: tuple[int, int]  # (width, height), the EXIF orientation applied
    several_frames: bool  # an animated GIF or PNG, a multi-page TIFF: load_rgb decodes the first frame only


def image_size(path: Path, *, fix: str = FILE_FIX, max_pixels: int | None = None,
               limit_option: str | None = None) -> tuple[int, int]:
    """(width, height) of an image file as `load_rgb` gives it (its EXIF orientation applied), from its header
    only (no pixel is decoded).

    A file whose pixel data is truncated passes; only ``load_rgb`` detects that.

    Raises:
        DataError: naming the file, the reason and ``fix``; or, with ``max_pixels``, an image of more
            pixels, naming its size and ``limit_option`` (the option that raises the limit; None: the command
            has none).
    """
    return _read_header(path, fix, max_pixels, limit_option, frames=False).size


def image_header(path: Path, *, fix: str = FILE_FIX, max_pixels: int | None = None,
                 limit_option: str | None = None) -> ImageHeader:
    """`image_size`, and whether the file holds several frames, from one opening of the file.

    Asking for the frames reads a little past the header for some formats (a GIF's second frame marker).
    """
    return _read_header(path, fix, max_pixels, limit_option, frames=True)


def _read_header(path: Path, fix: str, max_pixels: int | None, limit_option: str | None, *,
                 frames: bool) -> ImageHeader:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Image.open parses the header (format, mode, size) but decodes no pixels.
            check_regular_file(path, "image file", fix=fix)
            with Image.open(path) as img:
                size = img.size
                if _orientation(img) in _QUARTER_TURNS and size == _stored_size(img):  # load_rgb turns it
                    size = (size[1], size[0])
                several = frames and _animated(img)
    except FileNotFoundError as e:
        raise DataError(f"image file {path} does not exist ({e}); {fix}") from e
    except Image.DecompressionBombError as e:
        raise _too_many_pixels(path, e, max_pixels, fix) from None
    except _PIL_READ_ERRORS as e:
        raise DataError(f"cannot read image file {path}: {_reason(e)}; {fix}") from e
    check_pixels(path, size, max_pixels, limit_option)
    return ImageHeader(size, several)


def _stored_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) of the pixels as the file stores them. Recent Pillows give a TIFF's size with its
    orientation tag applied already (and turn its pixels when they are loaded); other formats, and older Pillows,
    give the stored size."""
    if img.format == "TIFF":
        tags = getattr(img, "tag_v2", {})
        width, height = tags.get(256), tags.get(257)  # ImageWidth, ImageLength
        if isinstance(width, int) and isinstance(height, int):
            return (width, height)
    return img.size


def _animated(img: Image.Image) -> bool:
    """Whether more frames follow the first; False where finding out fails (a GIF cut after its first frame):
    load_rgb decodes the first frame and names what is wrong with it."""
    try:
        return bool(getattr(img, "is_animated", False))
    except Exception:  # noqa: BLE001 - a cut GIF raises IndexError or struct.error here, among others
        return False


def warn_of_several_frames(paths: Iterable[Path], what: str, done: str) -> None:
    """Warn once where files of ``paths`` (``what``: "--pred image") hold several frames (an animated GIF or PNG, a
    multi-page TIFF), each ``done`` ("scored") from its first frame only, as `load_rgb` reads it: `translate` said so
    of its inputs, evaluation scored the first frames without a word. A file whose header cannot be read is left to
    `load_rgb`, which names it."""
    several = []
    for path in paths:
        try:
            if image_header(path).several_frames:
                several.append(path)
        except DataError:
            continue
    if several:
        log.warning("%d %s file(s) hold several frames (e.g. %s); each is %s from its first frame only",
                    len(several), what, several[0], done)


def check_pixels(path: Path, size: tuple[int, int], max_pixels: int | None, limit_option: str | None) -> None:
    """DataError naming the file, its size and ``limit_option`` (with the value that allows it) for an image of more
    than ``max_pixels`` pixels (None: no limit)."""
    w, h = size
    if max_pixels is not None and w * h > max_pixels:
        allow = f", or pass {limit_option} {w * h} to allow it" if limit_option else ""
        statement = f"image file {path} is {w} x {h} = {w * h:,} pixels, more than the limit of {max_pixels:,}"
        raise TooManyPixels(f"{statement}; shrink it{allow} (memory grows with the pixels)", w * h, path=path,
                            need=w * h if limit_option else None, option=limit_option, statement=statement)


def check_image_header(path: Path) -> None:
    """Cheaply check that ``path`` is an image file PIL can identify (see ``image_size``).

    Raises:
        DataError: naming the file, the reason and the fix (``--data.skip_bad_images true``).
    """
    image_size(path, fix=SKIP_HINT)


def _reason(e: BaseException) -> str:
    if isinstance(e, UnidentifiedImageError):
        return "not an image file PIL can identify"
    msg = str(e).strip()
    if isinstance(e, OSError) and "truncated" in msg:
        return f"the file is truncated or corrupt ({msg})"
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def _decode(path: Path, max_pixels: int | None, limit_option: str | None, fix: str) -> Image.Image:
    check_regular_file(path, "image file", fix=fix)  # a FIFO would block PIL, a device never end
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as img:
            check_pixels(path, img.size, max_pixels, limit_option)  # before a single pixel is decoded
            img.load()
            # Converting inside the `with` block yields a new image detached from the file. A camera's EXIF
            # orientation is applied, as every viewer applies it: the pixels as stored may lie on their side.
            return to_rgb(ImageOps.exif_transpose(img) or img)


def load_rgb(path: Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS, limit_option: str | None = None,
             fix: str = FILE_FIX) -> Image.Image:
    """Open and fully decode an image file and return it in mode "RGB" (8 bits per channel).

    Mode handling (see ``to_rgb``): grayscale and palette images are expanded to RGB;
    images with an alpha channel ("RGBA", "LA", "PA", palette with transparency, a PNG key colour) are
    composited onto black, i.e. rgb * alpha / 255; 16-bit images are scaled 0..65535 -> 0..255.
    Only the first frame of multi-frame files (GIF, TIFF) is used; the EXIF orientation tag is
    applied (an image a camera stored on its side comes out upright, as viewers show it).

    Truncated files always raise, even if ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` was switched
    on elsewhere in the process.

    Raises:
        DataError: the file is missing, not an image, truncated or otherwise undecodable; the
            message names the file, the reason and ``fix`` (default: replace or delete it; the training loader
            passes ``SKIP_HINT``). Or the image has more than ``max_pixels`` pixels (None: no limit), checked from
            its header before decoding; the message names ``limit_option`` if the command has one.
    """
    path = Path(path)
    try:
        if ImageFile.LOAD_TRUNCATED_IMAGES:
            with _TRUNCATED_FLAG_LOCK:
                saved = ImageFile.LOAD_TRUNCATED_IMAGES
                ImageFile.LOAD_TRUNCATED_IMAGES = False
                try:
                    return _decode(path, max_pixels, limit_option, fix)
                finally:
                    ImageFile.LOAD_TRUNCATED_IMAGES = saved
        return _decode(path, max_pixels, limit_option, fix)
    except FileNotFoundError as e:
        raise DataError(f"image file {path} does not exist ({e}); {fix}") from e
    except Image.DecompressionBombError as e:
        raise _too_many_pixels(path, e, max_pixels, fix) from None
    except _PIL_READ_ERRORS as e:
        raise DataError(f"cannot read image file {path}: {_reason(e)}; {fix}") from e


def _composite_on_black(rgba: Image.Image) -> Image.Image:
    arr = np.asarray(rgba, dtype=np.uint16)
    # (x * a + 127) // 255 is round(x * a / 255) in integer arithmetic.
    rgb = (arr[..., :3] * arr[..., 3:4] + 127) // 255
    return Image.fromarray(rgb.astype(np.uint8))


def _wide_to_uint8(img: Image.Image) -> np.ndarray:
    """Scale a single-channel 16/32-bit or float image to uint8 (H, W)."""
    mode = img.mode
    arr = np.asarray(img)
    if mode.startswith("I;16"):
        return np.rint(arr.astype(np.float32) / 257.0).astype(np.uint8)
    vals = arr.astype(np.float64)
    vals = np.nan_to_num(vals, nan=0.0, posinf=0.0, neginf=0.0)
    vmax = float(vals.max()) if vals.size else 0.0
    if mode == "F" and vmax <= 1.0:
        # Float images are conventionally in [0, 1].
        scaled = vals * 255.0
    elif vmax <= 65535.0:
        # Pillow reports 16-bit PNG/PGM/TIFF data as mode "I" in several cases, so the
        # 16-bit range is the right default for "I" (and for "F" holding integer levels).
        scaled = vals / 257.0
    else:
        # True 32-bit data has no standard white level; map the image maximum to white.
        scaled = vals * (255.0 / vmax)
    return np.rint(np.clip(scaled, 0.0, 255.0)).astype(np.uint8)


def _key_colour_pixels(img: Image.Image) -> np.ndarray | None:
    """The (H, W) mask of the pixels of a grey, 16-bit or RGB image's key colour (a PNG's tRNS chunk: one value or
    colour that viewers show fully transparent), or None where the image has none."""
    key = img.info.get("transparency")
    if key is None or isinstance(key, bytes) or not (img.mode in ("L", "RGB") or img.mode.startswith("I")):
        return None
    arr = np.asarray(img)
    if img.mode == "RGB":
        if not isinstance(key, tuple) or len(key) != 3:
            return None
        return np.all(arr == np.asarray(key, dtype=arr.dtype), axis=-1)
    if not isinstance(key, int):
        return None
    return np.asarray(arr == key)


def _without_key_colour(img: Image.Image) -> Image.Image:
    plain = img.copy()
    plain.info.pop("transparency", None)
    return plain


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert a PIL image of any mode to an 8-bit "RGB" image.

    - "RGB": returned as a copy.
    - "1", "L", "P" (no transparency), "CMYK", "YCbCr", "LAB", "HSV", "RGBX": PIL conversion.
    - Alpha ("RGBA", "LA", "PA", "La", "RGBa", "P" with transparency): composited onto black. A grey, 16-bit or
      RGB image with a key colour (a PNG's tRNS chunk) likewise: the pixels of that colour are black.
    - "I;16", "I;16B", "I;16L", "I;16N": 0..65535 scaled to 0..255 (65535 -> 255, 32768 -> 128).
    - "I": values clipped at 0 and treated as 16-bit (0..65535 -> 0..255); if the image holds
      values above 65535 its maximum is mapped to 255.
    - "F": if all values are <= 1 the range [0, 1] is mapped to 0..255, otherwise as "I".

    Raises:
        DataError: the mode cannot be converted.
    """
    mode = img.mode
    hidden = _key_colour_pixels(img)
    if hidden is not None:  # a PNG's key colour is transparent, as a palette's transparent entries are
        rgb = np.array(to_rgb(_without_key_colour(img)))
        rgb[hidden] = 0
        return Image.fromarray(rgb)
    if mode == "RGB":
        return img.copy()
    if mode.startswith("I") or mode == "F":
        gray = _wide_to_uint8(img)
        return Image.fromarray(np.repeat(gray[..., None], 3, axis=2))
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode == "P" and "transparency" in img.info
    ):
        # PIL converts premultiplied grey ("La") to "LA" only ("conversion from La to L not supported")
        return _composite_on_black((img.convert("LA") if mode == "La" else img).convert("RGBA"))
    try:
        return img.convert("RGB")
    except ValueError as e:
        raise DataError(
            f"image mode {mode!r} cannot be converted to RGB ({e}); convert the file to an "
            f"8-bit RGB or grayscale PNG"
        ) from e


def _uint8_hwc_to_tensor(arr: np.ndarray) -> torch.Tensor:
    # 127.5 maps 0 -> -1 and 255 -> 1 exactly in float32.
    chw = np.ascontiguousarray(arr.transpose(2, 0, 1))
    if not chw.flags.writeable:  # torch shares the array's memory: a read-only one (a decoded buffer) is copied
        chw = chw.copy()
    t = torch.from_numpy(chw)
    return t.to(torch.float32).div_(127.5).sub_(1.0)


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """Convert a PIL image to a float32 tensor of shape (3, H, W) with values in [-1, 1].

    Images not in mode "RGB" are converted first with ``to_rgb``.

    Raises:
        TypeError: ``img`` is not a PIL image (a path: read it with `load_rgb` first).
    """
    if not isinstance(img, Image.Image):  # a path was an AttributeError ('str' object has no attribute 'mode')
        fix = "; read a file with srunit.data.load_rgb(path) first" if isinstance(img, (str, Path)) else ""
        raise TypeError(f"pil_to_tensor: img must be a PIL image, got {type(img).__name__} {img!r:.80}{fix}")
    if img.mode != "RGB":
        img = to_rgb(img)
    return _uint8_hwc_to_tensor(np.asarray(img, dtype=np.uint8))


def tensor_to_uint8(x: torch.Tensor) -> np.ndarray:
    """Convert a (3, H, W) or (1, H, W) tensor in [-1, 1] to a uint8 array (H, W, 3).

    Any float dtype and device; values outside [-1, 1] are clamped, then rounded.

    Raises:
        TypeError: ``x`` is not a torch tensor.
        ValueError: another shape, integer values (8-bit pixels would be clamped to white), or non-finite values (the
            clamp would show NaN as black, inf as white).
    """
    if not isinstance(x, torch.Tensor):  # a numpy array was "'numpy.ndarray' object has no attribute 'ndim'"
        raise TypeError(f"expected an image tensor of shape (3, H, W) in [-1, 1], got {type(x).__name__}; convert a "
                        f"numpy array with torch.from_numpy(a)")
    if not x.is_floating_point():  # 0..255 pixels were clamped to [-1, 1]: an image of white, without a word
        raise ValueError(f"the image tensor is {x.dtype}; images are floating-point values in [-1, 1]: convert 8-bit "
                         f"pixels with x.float() / 127.5 - 1")
    if x.ndim != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"expected an image tensor of shape (3, H, W), got {tuple(x.shape)}")
    x = x.detach().to(device="cpu", dtype=torch.float32)
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise ValueError(f"the image tensor holds {bad} non-finite value(s) (nan or inf) of {x.numel()}; no image "
                         f"shows them: check what produced it (a diverged or damaged network)")
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    u8 = x.clamp(-1.0, 1.0).add(1.0).mul(127.5).round().to(torch.uint8)
    return u8.permute(1, 2, 0).contiguous().numpy()


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """Convert a (3, H, W) tensor in [-1, 1] (any float dtype, any device) to an RGB PIL image.

    Values are clamped to [-1, 1] and rounded to the nearest 8-bit level.
    """
    return Image.fromarray(tensor_to_uint8(x))


def make_grid(images: torch.Tensor, ncol: int, *, pad: int = 2, pad_value: float = 1.0
              ) -> torch.Tensor:
    """Tile a batch into one image.

    Args:
        images: (N, C, H, W) tensor, values in [-1, 1].
        ncol: number of cells per row; rows = ceil(N / ncol). Missing cells are filled
            with ``pad_value``.
        pad: pixels between neighbouring cells (none around the border).
        pad_value: value of the padding, 1.0 = white.

    Returns:
        (C, rows * H + (rows - 1) * pad, ncol * W + (ncol - 1) * pad) tensor, same dtype/device.
    """
    if images.ndim != 4:
        raise ValueError(f"make_grid expects (N, C, H, W), got shape {tuple(images.shape)}")
    if ncol < 1:
        raise ValueError(f"make_grid ncol must be >= 1, got {ncol}")
    n, c, h, w = images.shape
    ncol = min(ncol, max(n, 1))
    nrow = max(1, -(-n // ncol))
    out = images.new_full((c, nrow * h + (nrow - 1) * pad, ncol * w + (ncol - 1) * pad),
                          pad_value)
    for i in range(n):
        r, k = divmod(i, ncol)
        y, x = r * (h + pad), k * (w + pad)
        out[:, y:y + h, x:x + w] = images[i]
    return out


def png_bytes(img: Image.Image) -> bytes:
    """``img`` encoded as a PNG file, in memory."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def save_png_atomic(img: Image.Image, path: Path) -> None:
    """Write ``img`` as PNG to ``path`` via a temporary file in the same folder + os.replace.

    Readers (e.g. a viewer polling the run folder) never see a half-written file, and a crash
    leaves the previous file intact. Parent folders are created; the file is 0644.
    """
    write_bytes_atomic(path, png_bytes(img))


def save_image_grid(rows: Sequence[Sequence[torch.Tensor]], path: Path, *, pad: int = 2
                    ) -> None:
    """Write a grid of images as one PNG, e.g. each row = real_A | fake_B | real_B.

    Args:
        rows: rows of (3, H, W) tensors in [-1, 1] (any float dtype/device). Images may differ
            in size: every cell gets the largest height and width, smaller images sit in the
            top-left corner on white. Rows may have different lengths.
        path: destination PNG, written atomically (see ``save_png_atomic``).
        pad: white pixels between cells.
    """
    cells = [[tensor_to_uint8(t) for t in row] for row in rows]
    flat = [a for row in cells for a in row]
    if not flat:
        raise ValueError(f"save_image_grid got no images to write to {path}")
    ch = max(a.shape[0] for a in flat)
    cw = max(a.shape[1] for a in flat)
    nrow = len(cells)
    ncol = max(len(row) for row in cells)
    canvas = np.full((nrow * ch + (nrow - 1) * pad, ncol * cw + (ncol - 1) * pad, 3), 255,
                     dtype=np.uint8)
    for r, row in enumerate(cells):
        for k, a in enumerate(row):
            y, x = r * (ch + pad), k * (cw + pad)
            canvas[y:y + a.shape[0], x:x + a.shape[1]] = a
    save_png_atomic(Image.fromarray(canvas), path)
