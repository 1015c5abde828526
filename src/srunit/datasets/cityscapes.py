"""Cityscapes: its label conventions and the conversion of a download for Label->Image (paper App. C).

``prepare_cityscapes`` turns a local download into colour labels, photos and train-id maps at
512x256, the resolution of the paper's Label->Image experiments.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from srunit._atomic import FolderWriter, folder_writer
from srunit._reading import check_regular_file
from srunit.checks import DEFAULT_MAX_PIXELS, check_int
from srunit.data.files import walk_once
from srunit.data.images import load_rgb, png_bytes
from srunit.data.labels import CITYSCAPES_CLASSES, CITYSCAPES_TRAIN_COLOURS
from srunit.datasets.output import require_empty_output
from srunit.errors import DataError

__all__ = [
    "CITYSCAPES_CLASSES",
    "CITYSCAPES_LABEL_TO_TRAIN_ID",
    "CITYSCAPES_TRAIN_COLOURS",
    "label_ids_to_train_ids",
    "prepare_cityscapes",
]

# The Cityscapes benchmark convention (cityscapesScripts' label table): the 19 evaluated
# classes get train ids 0..18; every other labelId (void, parking, rail track, guard rail,
# bridge, tunnel, pole group, caravan, trailer, ...) is ignored as 255.
CITYSCAPES_LABEL_TO_TRAIN_ID: dict[int, int] = {
    7: 0,  # road
    8: 1,  # sidewalk
    11: 2,  # building
    12: 3,  # wall
    13: 4,  # fence
    17: 5,  # pole
    19: 6,  # traffic light
    20: 7,  # traffic sign
    21: 8,  # vegetation
    22: 9,  # terrain
    23: 10,  # sky
    24: 11,  # person
    25: 12,  # rider
    26: 13,  # car
    27: 14,  # truck
    28: 15,  # bus
    31: 16,  # train
    32: 17,  # motorcycle
    33: 18,  # bicycle
}

MAX_SIDE = 16384  # --width, --height: 8 times Cityscapes' own 2048 x 1024

_LUT = np.full(256, 255, dtype=np.uint8)
_LUT[list(CITYSCAPES_LABEL_TO_TRAIN_ID)] = list(CITYSCAPES_LABEL_TO_TRAIN_ID.values())



def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map Cityscapes labelIds (0..33, uint8) to train ids 0..18, everything else to 255."""
    return _LUT[np.asarray(label_ids, dtype=np.uint8)]


def _find(folder: Path, suffix: str) -> dict[str, Path]:
    """The files of ``folder`` (recursively) whose names end in ``suffix``, by the name before it. Two of one name
    (a copy in another city folder) are refused: one was kept without a word, which of the two by the order the
    file system lists them, so a photo could be paired with another copy's labels."""
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in walk_once(folder):  # a link loop is no second copy of a file
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(suffix) and not name.startswith("."):
                key, path = name[: -len(suffix)], Path(dirpath) / name
                if key in found:
                    raise DataError(f"Cityscapes files {found[key]} and {path} have the same name; each image is "
                                    f"listed once under {folder}: remove or move one of them (nothing was written)")
                found[key] = path
    return found


def prepare_cityscapes(root: str | Path, out: str | Path | FolderWriter, *, size: tuple[int, int] = (512, 256)
                       ) -> dict[str, int]:
    """Convert a local Cityscapes download into Label->Image folders (paper App. C).

    Reads ``root/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` and the
    matching ``root/gtFine/<split>/<city>/..._gtFine_color.png`` and ``..._gtFine_labelIds.png``
    for each split among train and val that exists under ``leftImg8bit``, and writes
    ``<prefix>.png`` into:

    - ``out/<split>A``: colour label images, nearest-neighbour resize (colours stay exact);
    - ``out/<split>B``: photos, bicubic resize;
    - ``out/<split>_labels``: train ids 0..18 / 255 (see ``CITYSCAPES_LABEL_TO_TRAIN_ID``),
      nearest-neighbour resize, 8-bit grayscale.

    Args:
        size: output (width, height); the paper uses 512x256.

    Returns:
        Number of images written per split, e.g. {"train": 2975, "val": 500}.

    Raises:
        DataError: a missing root sub-folder, a photo without its labels (or labels without a
            photo), or a non-empty output folder.
    """
    root = Path(root)
    width, height = size
    # Named as the options of `srunit data cityscapes`; bounded: --height 10**6 resized every photo to it.
    check_int(width, "--width", 1, maximum=MAX_SIDE, fix="pass e.g. --width 512 (Cityscapes photos are 2048 wide)")
    check_int(height, "--height", 1, maximum=MAX_SIDE,
              fix="pass e.g. --height 256 (Cityscapes photos are 1024 high)")
    photos_root, gt_root = root / "leftImg8bit", root / "gtFine"
    for folder in (photos_root, gt_root):
        if not folder.is_dir():
            raise DataError(
                f"Cityscapes folder {folder} does not exist; --root must be the folder holding "
                f"leftImg8bit/ and gtFine/ (unpack leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip there)"
            )
    splits = [s for s in ("train", "val") if (photos_root / s).is_dir()]
    if not splits:
        raise DataError(
            f"Cityscapes folder {photos_root / 'train'} does not exist (nor {photos_root / 'val'}); "
            f"unpack leftImg8bit_trainvaltest.zip into --root"
        )
    if not isinstance(out, FolderWriter):  # a folder given opened is its opener's to check
        require_empty_output(out)
    # Pair and check every split before writing anything, so an error leaves no partial output.
    plan: dict[str, list[tuple[str, Path, Path, Path]]] = {}
    for split in splits:
        if not (gt_root / split).is_dir():
            raise DataError(
                f"Cityscapes folder {gt_root / split} does not exist but {photos_root / split} does; "
                f"unpack gtFine_trainvaltest.zip into --root"
            )
        photos = _find(photos_root / split, "_leftImg8bit.png")
        colours = _find(gt_root / split, "_gtFine_color.png")
        ids = _find(gt_root / split, "_gtFine_labelIds.png")
        if not photos:
            raise DataError(
                f"Cityscapes folder {photos_root / split} holds no *_leftImg8bit.png files; "
                f"unpack leftImg8bit_trainvaltest.zip into --root"
            )
        for key, photo in sorted(photos.items()):
            for table, kind in ((colours, "_gtFine_color.png"), (ids, "_gtFine_labelIds.png")):
                if key not in table:
                    raise DataError(
                        f"photo {photo} has no label file {key}{kind} under {gt_root / split}; "
                        f"add it or remove the photo"
                    )
        for table in (colours, ids):
            for key, label in sorted(table.items()):
                if key not in photos:
                    raise DataError(
                        f"label file {label} has no photo {key}_leftImg8bit.png under "
                        f"{photos_root / split}; add it or remove the label file"
                    )
        plan[split] = [(k, photos[k], colours[k], ids[k]) for k in sorted(photos)]
    with folder_writer(out) as writer:
        return _convert(plan, writer, (width, height))


def _convert(plan: dict[str, list[tuple[str, Path, Path, Path]]], writer: FolderWriter, size: tuple[int, int]
             ) -> dict[str, int]:
    """Write the photos, colour labels and train-id maps of ``plan`` (split: key, photo, colour, label ids) into the
    folder ``writer`` opened, at ``size`` (width, height); returns the number of images per split."""
    width, height = size
    counts: dict[str, int] = {}
    for split, items in plan.items():
        for key, photo, colour, label_ids in items:
            img = load_rgb(photo).resize((width, height), Image.Resampling.BICUBIC)
            writer.write_bytes(f"{split}B/{key}.png", png_bytes(img))
            col = load_rgb(colour).resize((width, height), Image.Resampling.NEAREST)
            writer.write_bytes(f"{split}A/{key}.png", png_bytes(col))
            check_regular_file(label_ids, "label file", fix="re-extract gtFine_trainvaltest.zip")
            try:
                with Image.open(label_ids) as raw:
                    if raw.width * raw.height > DEFAULT_MAX_PIXELS:  # from the header, before decoding
                        raise DataError(f"label file {label_ids} is {raw.width} x {raw.height} pixels, more than the "
                                        f"limit of {DEFAULT_MAX_PIXELS:,}; re-extract gtFine_trainvaltest.zip")
                    ids_img = raw.convert("L") if raw.mode != "L" else raw.copy()
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
                raise DataError(
                    f"cannot read label file {label_ids} ({type(e).__name__}: {e}); re-extract gtFine_trainvaltest.zip"
                ) from e
            ids_small = np.asarray(ids_img.resize((width, height), Image.Resampling.NEAREST))
            train_ids = Image.fromarray(label_ids_to_train_ids(ids_small))
            writer.write_bytes(f"{split}_labels/{key}.png", png_bytes(train_ids))
        counts[split] = len(items)
    return counts
