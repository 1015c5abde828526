"""Scoring a folder of images with a segmenter against the label maps of their sources (Sec. 5.1.1).

Shared by `srunit eval seg` and the SynthScapes benchmark: images and label maps pair by name
stem (`pair_by_stem`), each image is segmented, and one confusion matrix collects every pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from srunit._atomic import FolderWriter
from srunit._outputs import check_not_in_a_domain_folder, guard_output, within, would_be_within
from srunit._progress import progress_bar
from srunit._reading import same_folder
from srunit.checks import check_flag, check_path
from srunit.data.files import nested_folders, pair_by_stem, scan_images, stem_key
from srunit.data.images import load_rgb, png_bytes, warn_of_several_frames
from srunit.data.labels import load_label_map
from srunit.errors import DataError
from srunit.eval.flips import FlipScores, flip_scores
from srunit.eval.hallucination import HallucinationScores, hallucination_scores
from srunit.eval.segmentation import ConfusionMatrix, SegmentationScores, class_name_list, segmentation_scores
from srunit.eval.segmenters import Segmenter

__all__ = ["FolderSegmentation", "check_images_and_labels", "score_segmentation"]


@dataclass
class FolderSegmentation:
    """The scores of a folder, the confusion matrix behind them and the number of images."""

    scores: SegmentationScores
    confusion: ConfusionMatrix
    num_images: int

    def flips(self, flip_from: Sequence[int] = (), flip_to: int | None = None) -> FlipScores:
        """The flips in the confusion matrix (`srunit.eval.flips`), with the directed flip rate from ``flip_from``
        into ``flip_to`` where both are given."""
        return flip_scores(self.confusion.counts, self.scores.class_names, flip_from=flip_from, flip_to=flip_to)

    def hallucinations(self, classes: Sequence[int]) -> HallucinationScores:
        """The pixels segmented as ``classes`` where the source holds another class (`srunit.eval.hallucination`)."""
        return hallucination_scores(self.confusion.counts, self.scores.class_names, classes)

    def to_dict(self, flip_from: Sequence[int] = (), flip_to: int | None = None,
                hallucinated: Sequence[int] = ()) -> dict[str, Any]:
        """JSON-ready (an evaluation record's ``segmentation``): the scores (``SegmentationScores.to_dict``),
        counts, the confusion matrix, the flips (``FlipScores.to_dict``) and, with ``hallucinated`` class ids, the
        hallucinations (``HallucinationScores.to_dict``)."""
        cm = self.confusion
        out = {**self.scores.to_dict(), "num_images": self.num_images, "num_classes": cm.num_classes,
               "ignore_index": cm.ignore_index, "confusion_matrix": cm.matrix.tolist(),
               "other_predictions": cm.counts[:, -1].tolist(),
               "flips": self.flips(flip_from, flip_to).to_dict()}
        if hallucinated:
            out["hallucination"] = self.hallucinations(hallucinated).to_dict()
        return out


_HINT = "pass --images DIR with the translated images and --labels DIR with the label maps"


def check_images_and_labels(images_root: Path, labels_root: Path) -> None:
    """DataError where the images' and the label maps' folders are one, or one lies inside the other.
    `evaluate_run_segmentation` asks before it copies the images into the run."""
    if same_folder(images_root, labels_root):
        # Each label map was segmented as an image and scored against itself: a table of flips, without a word.
        raise DataError(f"--images and --labels are the same folder ({images_root}); the label maps would be "
                        f"segmented as images; {_HINT}")
    nested = nested_folders(images_root, "--images", labels_root, "--labels")
    if nested is not None:
        raise DataError(f"{nested}, so the inner one's files would be read as the outer one's too; {_HINT}, neither "
                        f"inside the other")


def score_segmentation(images: str | Path, labels: str | Path, segment: Segmenter, num_classes: int, *,
                       ignore_index: int = 255, class_names: Sequence[str] | None = None,
                       predicted: str | Path | FolderWriter | None = None, show_progress: bool = False,
                       overwrite: bool = False) -> FolderSegmentation:
    """Segment every image of ``images`` and score it against the label map of the same name stem in ``labels``.

    Args:
        images: folder of (translated) images, scanned recursively.
        labels: folder of single-channel class-id label maps (see ``load_label_map``).
        segment: (H, W, 3) uint8 RGB -> (H, W) integer class ids.
        num_classes, ignore_index, class_names: as for ``ConfusionMatrix`` and ``segmentation_scores``.
        predicted: if given, each predicted class map is written there as ``STEM.png`` (8-bit ids): a folder, or
            the `FolderWriter` of one (opened once, as an evaluation into a run writes; its caller checks it). A
            folder may be neither ``images`` nor ``labels``, nor lie inside or hold one, and its existing files are
            replaced only with ``overwrite``; everything is checked before the first image is segmented.
        show_progress: a progress bar of the images scored, with the time left, where standard error is a terminal.
        overwrite: replace the files of the same name in a ``predicted`` folder (else they are refused).

    Raises:
        DataError: a folder is missing or empty, ``images`` and ``labels`` are one folder, a file has no
            partner, or an image and its label map differ in size; ``predicted`` is, lies inside or holds
            ``images`` or ``labels``, or holds class map files of these names already (without ``overwrite``).
        ConfigError: bad ``num_classes`` or ``class_names``.
        TypeError: ``segment`` is not callable.
    """
    if not callable(segment):  # None or 'synthscapes' failed on the first image: "'str' object is not callable"
        raise TypeError(f"score_segmentation: segment must be a function from an (H, W, 3) uint8 image to (H, W) "
                        f"class ids, got {type(segment).__name__} {segment!r:.80}; srunit.eval.load_segmenter(spec) "
                        f"makes one of a model file or a module:function")
    show_progress = check_flag(show_progress, "score_segmentation: show_progress")
    overwrite = check_flag(overwrite, "score_segmentation: overwrite")
    cm = ConfusionMatrix(num_classes, ignore_index)
    class_names = class_name_list(class_names, cm.num_classes)  # checked before any image is read
    images_root = check_path(images, "score_segmentation: images").expanduser()
    labels_root = check_path(labels, "score_segmentation: labels").expanduser()
    predicted_root = None
    if predicted is not None and not isinstance(predicted, FolderWriter):
        predicted_root = check_path(predicted, "score_segmentation: predicted").expanduser()
    check_images_and_labels(images_root, labels_root)
    hint = _HINT
    if predicted_root is not None:
        _check_predicted_place(predicted_root, images_root, labels_root)
        # What every output of a command is refused: a file there, a run's folder, a data set's domain folder
        guard_output(predicted_root, "score_segmentation: predicted", folder=True)
        check_not_in_a_domain_folder(predicted_root, "score_segmentation: predicted", "the class maps")
    pairs = pair_by_stem((scan_images(images_root, "image", hint=hint), images_root, "image"),
                         (scan_images(labels_root, "label", hint=hint), labels_root, "label map"))
    warn_of_several_frames((image for image, _ in pairs), "--images image", "segmented")
    if predicted_root is not None and not overwrite:
        _refuse_existing(predicted_root, [f"{stem_key(label, labels_root)}.png" for _, label in pairs])
    # The folder checked (~ expanded): FolderWriter('~/pred') made a folder named '~' in the working folder.
    writer = FolderWriter(predicted_root) if predicted_root is not None else \
        predicted if isinstance(predicted, FolderWriter) else None
    with progress_bar(len(pairs), "image", show_progress) as bar:
        for image_path, label_path in pairs:
            _score_one(image_path, label_path, segment, cm, labels_root, writer)
            bar.update(1)
    return FolderSegmentation(segmentation_scores(cm, class_names), cm, len(pairs))


def _check_predicted_place(predicted: Path, images: Path, labels: Path) -> None:
    """DataError, before any image is read, where the folder ``predicted`` is, lies inside or holds ``images`` or
    ``labels``. The class maps were written over the user's label maps (predicted=labels) and images without a word,
    and the second call then scored the predictions against themselves (pixel accuracy 1.0)."""
    fix = "pass predicted a folder outside both (nothing was written)"
    for name, root in (("--images", images), ("--labels", labels)):
        what = "images" if name == "--images" else "label maps"
        if would_be_within(predicted, root):
            where = "is" if same_folder(predicted, root) else "lies inside"
            raise DataError(f"predicted {predicted} {where} {name} {root}: the class maps would be written over or "
                            f"among its {what}; {fix}")
        if predicted.exists() and within(root, predicted):
            raise DataError(f"predicted {predicted} holds {name} {root}: its {what} would be among the class maps "
                            f"(folders are read with their sub-folders); {fix}")


def _refuse_existing(predicted: Path, names: Sequence[str]) -> None:
    """DataError, before any class map is written, where the folder ``predicted`` holds files of the class maps'
    ``names`` already: they were replaced in any folder without a word (`translate_folder` asks for ``overwrite``)."""
    existing = [predicted / name for name in names
                if (predicted / name).exists() or (predicted / name).is_symlink()]
    if existing:
        raise DataError(f"{len(existing)} class map file(s) exist already in predicted {predicted} (first: "
                        f"{existing[0]}); pass overwrite=True to replace them, or choose another predicted folder "
                        f"(nothing was written)")


def _score_one(image_path: Path, label_path: Path, segment: Segmenter, cm: ConfusionMatrix, labels_root: Path,
               predicted: FolderWriter | None) -> None:
    """Segment one image, score it against its label map into ``cm``, and write its class map to ``predicted``."""
    image = np.asarray(load_rgb(image_path), dtype=np.uint8)
    label = load_label_map(label_path)
    if image.shape[:2] != label.shape:
        raise DataError(f"image {image_path} is {image.shape[1]}x{image.shape[0]} but label map {label_path} "
                        f"is {label.shape[1]}x{label.shape[0]} (width x height); translate at the label "
                        f"resolution or resize the labels (nearest neighbour) before evaluating")
    pred = segment(image)
    cm.update(pred, label, source=f"{image_path} / {label_path}")
    if predicted is not None:
        class_map = png_bytes(_class_map_image(pred, cm.num_classes))
        predicted.write_bytes(f"{stem_key(label_path, labels_root)}.png", class_map)


def _class_map_image(pred: np.ndarray, num_classes: int) -> Image.Image:
    """A segmenter's (H, W) class ids as a PNG that `load_label_map` reads back: ids outside [0, N) become N (the
    confusion matrix's "other" column, no class of the labels), 8-bit where N < 256, else 16-bit. A cast to uint8
    wrapped ids of 256 classes or more (class 300 was written as class 44), and the report's flip grids read the
    wrapped ids: pixels that flipped into class 300 showed as kept where the label was 44."""
    ids = np.asarray(pred).astype(np.int64)
    ids = np.where((ids < 0) | (ids >= num_classes), num_classes, ids)
    return Image.fromarray(ids.astype(np.uint8 if num_classes < 256 else np.uint16))
