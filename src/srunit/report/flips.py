"""Flipped pixels: where the segmenter's class on a translation differs from the source label, and
the report's image grids that show them (with a StegoGAN run's unmatchability masks beside its translations)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from srunit.data.files import index_by_stem, scan_images
from srunit.data.images import load_rgb, png_bytes
from srunit.data.labels import load_label_map
from srunit.errors import DataError
from srunit.report.markup import esc, img_tag, table
from srunit.report.runs import Bench, Run, warn
from srunit.runtime.run_folder import RunFolder

__all__ = ["FLIP_COLOUR", "flip_mask", "highlight_flips", "grids_section"]

# Cyan: in neither label palette (Cityscapes' sidewalk is magenta, and SynthScapes draws its labels in Cityscapes
# colours), and far from each of their colours, so a flip is never read as a class.
FLIP_COLOUR = (0, 255, 255)
MIN_CELL_WIDTH = 128  # tiny benchmark images are upscaled (nearest neighbour) to at least this width
MAX_UPSCALED_PIXELS = 512 * 512  # ... unless that would make more pixels: a 1 x 100,000 strip would be 4.9 GB


def upscale_factor(width: int, height: int) -> int:
    """The whole factor a cell of ``width`` x ``height`` is enlarged by: enough for MIN_CELL_WIDTH, but never past
    MAX_UPSCALED_PIXELS (1: shown as it is)."""
    wanted = -(-MIN_CELL_WIDTH // width)
    room = math.isqrt(MAX_UPSCALED_PIXELS // (width * height)) if width * height <= MAX_UPSCALED_PIXELS else 1
    return max(1, min(wanted, room))


def flip_mask(pred: np.ndarray, labels: np.ndarray, ignore_index: int = 255, *, num_classes: int | None = None,
              source: str = "") -> np.ndarray:
    """Pixels whose semantics flipped: the segmenter's class on the translation differs from the label.

    Args:
        pred: (H, W) integer class ids predicted on the translated image.
        labels: (H, W) integer class ids of the source image; ``ignore_index`` pixels never flip.
        num_classes: with it, a prediction outside 0..num_classes-1 (none of the classes: the SynthScapes scorer's
            *not rendered*) is no flip, as `srunit.eval.flips` counts it apart; without it, any other id flips.
        source: file names for error messages.

    Returns:
        (H, W) bool array, True where flipped.

    Raises:
        DataError: the shapes differ.
    """
    pred, labels = np.asarray(pred), np.asarray(labels)
    if pred.shape != labels.shape or pred.ndim != 2:
        where = f" ({source})" if source else ""
        raise DataError(f"prediction shape {pred.shape} and label map shape {labels.shape} must be the same "
                        f"(H, W){where}; evaluate the translations at the label resolution")
    flipped = (pred != labels) & (labels != ignore_index)
    return flipped if num_classes is None else flipped & (pred >= 0) & (pred < num_classes)


def highlight_flips(image: np.ndarray, mask: np.ndarray, alpha: float = 0.65) -> np.ndarray:
    """Blend ``FLIP_COLOUR`` (saturated cyan) over the flipped pixels; the others stay as they are.

    Args:
        image: (H, W, 3) uint8 RGB.
        mask: (H, W) bool, True where flipped (see ``flip_mask``).
        alpha: opacity of the highlight in [0, 1].

    Returns:
        (H, W, 3) uint8 RGB copy of ``image``.
    """
    if not isinstance(image, np.ndarray) or not isinstance(mask, np.ndarray):
        raise TypeError(f"highlight_flips: image and mask must be numpy arrays, got {type(image).__name__} and "
                        f"{type(mask).__name__}")
    if image.shape[:2] != mask.shape or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image {image.shape} must be (H, W, 3) with the mask's (H, W) {mask.shape}")
    if mask.dtype != np.bool_ or image.dtype != np.uint8:
        # An integer mask indexed rows (an IndexError, or the wrong pixels); other images were cast without a word.
        raise TypeError(f"highlight_flips: image must be uint8 and mask bool (flip_mask gives it), got {image.dtype} "
                        f"and {mask.dtype}")
    number = isinstance(alpha, (int, float, np.floating)) and not isinstance(alpha, (bool, np.bool_))
    if not (number and 0 <= alpha <= 1):  # 2 wrapped past 255 in the cast to uint8
        raise ValueError(f"highlight_flips: alpha is an opacity in [0, 1], got {alpha!r:.40}")
    out = image.copy()
    blended = (1.0 - alpha) * image[mask].astype(np.float64) + alpha * np.asarray(FLIP_COLOUR, dtype=np.float64)
    out[mask] = np.rint(blended).astype(np.uint8)
    return out


def _folders(run: Run) -> dict[str, Path]:
    """The eval record's image folders; relative ones are relative to the run's eval/ folder (normalised, so two
    runs that name one folder from different places share it)."""
    images = (run.scores or {}).get("images")
    if not isinstance(images, dict):
        return {}
    return {role: Path(os.path.normpath(RunFolder(run.path).eval / str(images[role])))
            for role in ("source", "target", "labels", "translated", "predicted", "masks") if images.get(role)}


def _by_stem(folder: Path, role: str, notes: list[str], field: str, runs: list[Run],
             hint: str = "rerun the evaluation to write it") -> dict[str, Path] | None:
    """The images of ``folder`` by name stem, or None with the reason in ``notes``; a folder that cannot be walked is
    named under "Not read" as the field ``images.FIELD`` of each of ``runs``' records: `images.source: "/dev"` failed
    the whole report with "/dev/fd/7: No such file or directory", naming neither."""
    try:
        return index_by_stem(scan_images(folder, role, hint=hint), folder, role)
    except DataError as e:
        notes.append(str(e))
    except OSError as e:
        for run in runs:
            warn(run.warnings, f"{RunFolder(run.path).scores}: images.{field} {folder} cannot be read "
                               f"({e.strerror or e}: {e.filename}); its images are not shown: run `srunit eval` again")
    return None


# The option of `srunit eval` that named each of the user's folders in a run's record.
_DATA_OPTIONS = {"source": "--sources", "labels": "--labels", "target": "--target"}


def _moved_data_hint(role: str, runs: list[Run]) -> str:
    """The way out when a folder of the user's that an evaluation recorded is gone: the evaluation reads it and
    never writes it, so running it again as it was cannot restore it."""
    return (f"the evaluation of {', '.join(str(run.path) for run in runs)} recorded it there and never writes it: "
            f"put the images back, or run `srunit eval ... --run RUN` again with {_DATA_OPTIONS[role]} naming their "
            f"new place")


def _cell(image: np.ndarray, alt: str, caption: str) -> str:
    """An image and, under it, what it is (``caption``: input, translation, flips, target)."""
    img = Image.fromarray(image)
    factor = upscale_factor(img.width, img.height)
    if factor > 1:
        img = img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)
    return img_tag(png_bytes(img), alt) + f"<div class=\"caption\">{esc(caption)}</div>"


def _grid(shared: dict[str, Path], runs: list[tuple[Run, dict[str, Path]]], num_images: int,
          notes: list[str]) -> str:
    """One table: a row per image name, columns source | each run | ground truth. With label maps each
    run's translation is shown twice, the second time with its flipped pixels highlighted."""
    roles = [r for r in ("source", "labels", "target") if r in shared]
    found = {r: _by_stem(shared[r], f"{r} image", notes, r, [run for run, _ in runs],
                         hint=_moved_data_hint(r, [run for run, _ in runs])) for r in roles}
    maps = {r: m for r, m in found.items() if m is not None}
    if len(maps) < len(found):
        return ""
    flips = "labels" in maps
    shown = []
    masks: dict[str, dict[str, Path]] = {}  # run label -> its unmatchability masks by name (StegoGAN runs)
    for run, folders in runs:
        translated = _by_stem(folders["translated"], f"{run.label}: translated image", notes, "translated", [run])
        predicted = _by_stem(folders["predicted"], f"{run.label}: predicted label", notes, "predicted",
                             [run]) if flips else {}
        if translated is not None and predicted is not None:
            shown.append((run, translated, predicted))
            if "masks" in folders:
                masks[run.label] = _by_stem(folders["masks"], f"{run.label}: unmatchability mask", notes, "masks",
                                            [run]) or {}
    candidates: list[dict[str, Path]] = [*maps.values()] + [m for _, t, p in shown for m in ((t, p) if flips else (t,))]
    names = set(candidates[0]).intersection(*candidates[1:]) if candidates else set()
    if not shown or not names:
        notes.append("no image name is shared by " + ", ".join(run.label for run, _ in runs))
        return ""
    header = ["image"] + (["input (source)"] if "source" in maps else []) \
        + [f"{run.label}: translation" + (" / flips" if flips else "") + (" / mask" if run.label in masks else "")
           for run, _, _ in shown] \
        + (["target (ground truth)"] if "target" in maps else [])
    rows = []
    for name in sorted(names)[:num_images]:
        row = [esc(name)]
        if "source" in maps:
            row.append(_cell(np.asarray(load_rgb(maps["source"][name])), f"source {name}", "input"))
        for run, translated, predicted in shown:
            image = np.asarray(load_rgb(translated[name]))
            cell = (_flip_cells(run, name, image, maps["labels"][name], predicted[name]) if flips
                    else _cell(image, f"{run.label} {name}", "translation"))
            mask = masks.get(run.label, {}).get(name)
            if mask is not None:
                cell += _cell(np.asarray(load_rgb(mask)), f"{run.label} {name} unmatched", "unmatched (white)")
            row.append(cell)
        if "target" in maps:
            row.append(_cell(np.asarray(load_rgb(maps["target"][name])), f"ground truth {name}", "target"))
        rows.append(row)
    caption = "; ".join(f"{role}: <code>{esc(shared[role])}</code>" for role in ("source", "labels", "target")
                        if role in shared)
    return f"<p class=\"note\">{caption}</p>" + table(header, rows, cls="grid")


def _flip_cells(run: Run, name: str, image: np.ndarray, labels_file: Path, predicted_file: Path) -> str:
    """The plain translation above, the same image with its flips marked below, and the flipped share."""
    labels = load_label_map(labels_file)
    ignore = int(((run.scores or {}).get("segmentation") or {}).get("ignore_index", 255))
    n = _num_classes(run)
    pred = load_label_map(predicted_file)
    mask = flip_mask(pred, labels, ignore, num_classes=n, source=f"{predicted_file} / {labels_file}")
    if image.shape[:2] != mask.shape:
        raise DataError(f"translated image of {name} is {image.shape[1]}x{image.shape[0]} but its label map "
                        f"{labels_file} is {mask.shape[1]}x{mask.shape[0]}; rerun the evaluation")
    labelled = np.count_nonzero(labels != ignore)
    share = f"flipped {100 * mask.sum() / labelled:.1f}%" if labelled else "no labelled pixels"
    none = np.count_nonzero((labels != ignore) & ((pred < 0) | (pred >= n))) if n is not None and labelled else 0
    if none:  # counted apart, as the scores table's Flip % and the flip figures count them
        share += f"; none of the classes {100 * none / labelled:.1f}%"
    return (_cell(image, f"{run.label} {name}", "translation")
            + _cell(highlight_flips(image, mask), f"{run.label} {name} flips", "flips")
            + f"<div>{esc(share)}</div>")


def _num_classes(run: Run) -> int | None:
    """The number of classes the run's evaluation scored (its record's), None where the record does not say."""
    scores = run.scores or {}
    n = (scores.get("segmentation") or {}).get("num_classes")
    if isinstance(n, int) and not isinstance(n, bool) and n > 0:
        return n
    names = scores.get("class_names")
    return len(names) if isinstance(names, list) and names else None


def grids_section(items: list[Run | Bench], num_images: int) -> str:
    """Translation grids, one per set of runs evaluated on the same images: flips highlighted where the
    evaluation has label maps (``eval seg``), the translations beside source and ground truth otherwise."""
    if num_images == 0:
        return ""
    # A bench shows one run per row (its first seed) and the upper bound.
    runs = [r for item in items for r in ([item] if isinstance(item, Run) else
                                          [row.runs[0] for row in item.rows if row.runs]
                                          + ([item.upper_run] if item.upper_run else []))]
    groups: dict[tuple[Path | None, ...], list[tuple[Run, dict[str, Path]]]] = {}
    notes: list[str] = []
    for run in runs:
        folders = _folders(run)
        if not folders:
            continue
        needed = ("translated", "predicted") if "labels" in folders else ("translated",)
        missing = [r for r in needed if r not in folders]
        if missing:
            notes.append(f"{run.label}: eval/scores.json names no {' or '.join(missing)} folder")
            continue
        groups.setdefault((folders.get("source"), folders.get("labels"), folders.get("target")), []).append(
            (run, folders))
    grids = [_grid({r: f for r, f in zip(("source", "labels", "target"), key) if f is not None}, members,
                   num_images, notes) for key, members in groups.items()]
    if not any(grids) and not notes:
        return ""
    legend = ""
    if any(key[1] is not None for key in groups):
        synthscapes = any((r.scores or {}).get("benchmark") == "synthscapes" for r in runs)
        legend = ("<p class=\"note\">Each run's translation (top) and the same image with its <b style=\"color:#0cc\">"
                  "flipped pixels in cyan</b> (bottom): pixels where the segmenter gives the translation another of "
                  "the classes than the source label; ignore-labelled pixels never count. The percentage is the "
                  "flipped share of the labelled pixels of that image, counted as the scores table's Flip % counts: "
                  "pixels the segmenter gives none of the classes"
                  + (" (the SynthScapes scorer's <em>not rendered</em>, where an image still looks like a label map)"
                     if synthscapes else "")
                  + " are not flips, and their share follows as <em>none of the classes</em>.</p>")
    if any(members and "masks" in folders for members in groups.values() for _, folders in members):
        legend += ("<p class=\"note\">A StegoGAN run also shows its <b>unmatchability mask</b> of each translation "
                   "(last): white where its B \u2192 A generator finds content without a counterpart in domain A, "
                   "the regions the model treats as unmatched (content it would hide rather than translate).</p>")
    notes_html = "".join(f"<p class=\"note\">Not shown: {esc(n)}</p>" for n in notes)
    return "<h2>Translations</h2>" + legend + "".join(grids) + notes_html
