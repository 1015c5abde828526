"""pix2pix-style side-by-side A|B images (e.g. the Maps set of paper App. C) cut into two folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from srunit._atomic import FolderWriter, check_umask, folder_writer
from srunit.data.files import scan_images
from srunit.data.images import image_size, load_rgb, png_bytes
from srunit.datasets.output import require_empty_output
from srunit.errors import ConfigError, DataError

__all__ = ["split_side_by_side"]


def split_side_by_side(src_dir: str | Path, out_dir: str | Path | FolderWriter, *, a_name: str = "A", b_name: str = "B"
                       ) -> int:
    """Cut pix2pix-style A|B images (left half A, right half B) into ``out/<a_name>`` and ``out/<b_name>``.

    Used for the Maps data of paper App. C (in the pix2pix download the left half is the aerial
    photo, the right half the map). Sub-folders of ``src_dir`` are mirrored; outputs are PNG
    named after the source file's stem. ``out_dir``: a folder, or the writer of one opened once (what
    `srunit._outputs.building_folder` yields), which every file is written relative to.

    Returns:
        The number of images split.

    Raises:
        DataError: an odd image width (named; checked for all files before anything is
            written), two sources mapping to the same output name, or a non-empty output folder.
    """
    check_umask("split_side_by_side")  # a folder of mode 0077 was left behind
    src = Path(src_dir)
    if not a_name or not b_name or a_name == b_name:
        raise ConfigError(f"the two output folder names must differ and be non-empty, got {a_name!r} and "
                          f"{b_name!r}; pass distinct names")
    files = scan_images(src, "side-by-side A|B", hint="pass --input DIR with pix2pix-style A|B images")
    if not isinstance(out_dir, FolderWriter):  # a folder given opened is its opener's to check
        for sub in (a_name, b_name):
            require_empty_output(Path(out_dir) / sub)
    rels: dict[Path, Path] = {}
    for f in files:
        w, _ = image_size(f, fix="replace or remove it")
        if w % 2:
            raise DataError(f"image {f} is {w} pixels wide, an odd width, so it cannot be cut into equal A|B "
                            f"halves; crop it to an even width or remove it")
        rel = f.relative_to(src).with_suffix(".png")
        if rel in rels:
            raise DataError(f"images {rels[rel]} and {f} would both be written as {rel}; rename one of them")
        rels[rel] = f
    with folder_writer(out_dir) as out:
        for rel, f in rels.items():
            arr = np.asarray(load_rgb(f))
            half = arr.shape[1] // 2
            out.write_bytes(Path(a_name, rel), png_bytes(Image.fromarray(arr[:, :half])))
            out.write_bytes(Path(b_name, rel), png_bytes(Image.fromarray(arr[:, half:])))
    return len(rels)
