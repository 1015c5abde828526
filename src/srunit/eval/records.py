"""The files evaluation results are kept in, shared by their writers and by `srunit report`.

``RUN/eval/scores.json`` (format ``EVAL_FORMAT``) holds one run's scores, written alike by the
SynthScapes benchmark and by ``srunit eval seg|paired --run RUN``:

    format, label, method, [condition, seed, benchmark, segmenter]
    segmentation: SegmentationScores.to_dict() + ignore_index      (eval seg)
                  + confusion_matrix, other_predictions (counts) and flips (FlipScores.to_dict())
                  + hallucination (HallucinationScores.to_dict()) where a class is named hallucinated
    paired: PairedScores.to_dict()                                  (eval paired)
    class_names, [palette]
    images: {translated, source, target, labels, predicted, masks}: folders, each present when known, named
            as ``stored_folder`` names them (relative ones are relative to RUN/eval/); masks: the
            unmatchability masks of the translations (`srunit.unmatched`), for a checkpoint whose B -> A
            generator has one (StegoGAN)
    images_digest, num_translated: ``image_set_digest`` of the translations scored (eval --run)
    checkpoint_step: the step of RUN/checkpoints/latest when they were scored (eval --run; None without one)

``srunit eval --run`` writes the images first and this record last, so a kill in between leaves images whose
digest is not the record's; `srunit report` checks it and does not show such images beside the scores.

A benchmark's ``summary.json`` (format ``BENCH_FORMAT``) holds mean and spread per row under the
flat metric names of ``flat_scores``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from srunit._atomic import FolderWriter, write_json_atomic
from srunit._reading import file_digest, read_json
from srunit.data.files import scan_images
from srunit.errors import DataError
from srunit.runtime.run_folder import RunFolder

__all__ = ["EVAL_FORMAT", "BENCH_FORMAT", "SEGMENTATION_KEYS", "FLIP_KEYS", "HALLUCINATION_KEY", "flat_scores",
           "ground_truth_scores", "RECORD_FILE", "in_percent", "MAX_DELTA", "acc_threshold",
           "update_run_record", "image_set_digest", "stored_folder"]

RECORD_FILE = RunFolder.SCORES  # in RUN/eval/
# A record holds a confusion matrix of up to MAX_CLASSES (4096) classes: 4096^2 counts of ~12 bytes of JSON each.
MAX_EVAL_RECORD_BYTES = 512 * 2**20

EVAL_FORMAT = "srunit-eval/1"
BENCH_FORMAT = "srunit-bench/1"
SEGMENTATION_KEYS = ("pixel_accuracy", "class_accuracy", "mean_iou")
FLIP_KEYS = ("directed_flip_rate", "flip_rate")  # srunit.eval.flips; lower is better
HALLUCINATION_KEY = "hallucination_rate"  # srunit.eval.hallucination; lower is better
MAX_DELTA = 256  # Acc(delta): the share of pixels whose largest channel difference is below delta (0-255 levels)


def in_percent(key: str) -> bool:
    """Whether the flat score ``key`` is a fraction that every table, log line and plot shows in percent (the
    accuracies, mIoU, the flip and hallucination rates, Acc(delta)); Dist keeps its own unit."""
    return key in (*SEGMENTATION_KEYS, *FLIP_KEYS, HALLUCINATION_KEY) or key.startswith("acc_")


def acc_threshold(key: str) -> int | None:
    """The delta of the flat score key ``acc_DELTA`` where DELTA is an Acc threshold `check_deltas` takes (an integer
    from 1 to `MAX_DELTA`, written plainly); None for any other key (a record's ``acc_-30`` is not a score)."""
    text = key[4:] if key.startswith("acc_") else ""
    if not text.isascii() or not text.isdigit() or str(int(text)) != text or not 1 <= int(text) <= MAX_DELTA:
        return None
    return int(text)


def stored_folder(folder: str | Path, eval_dir: str | Path, home: str | Path) -> str:
    """How an evaluation record in ``eval_dir`` names ``folder``: relative to ``eval_dir`` (with ``/``) where
    ``folder`` lies inside ``home``, else absolute.

    ``home`` is the folder that is moved or copied as a whole with the run: the run folder itself for
    `srunit eval --run` (the user's own data may lie anywhere, and a run moved without it still finds it by its
    absolute name), or the output folder of a benchmark or a tuning study, which holds both the data it made and
    its runs (moved together, the record still finds the images it shows).
    """
    folder, eval_dir, home = (Path(os.path.abspath(p)) for p in (folder, eval_dir, home))
    if folder == home or home in folder.parents:
        return Path(os.path.relpath(folder, eval_dir)).as_posix()
    return str(folder)


def ground_truth_scores(upper_bound: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The ground-truth row of a bench's tables: the segmenter's scores on the renderings (``upper_bound``), and
    the paired metrics among ``keys`` of the renderings against themselves, Dist 0 and every Acc(delta) 1 (the
    report page and table.md both show this row; the page showed no paired scores where table.md did)."""
    paired = {k: 0.0 if k == "dist" else 1.0 for k in keys
              if k == "dist" or (k.startswith("acc_") and k[4:].isdigit())}
    return {**upper_bound, **paired}


def flat_scores(record: dict[str, Any]) -> dict[str, float]:
    """An evaluation record's scores under flat names: the segmentation keys, ``dist``, ``acc_30``-style keys,
    the flip rates (``FLIP_KEYS``) and the hallucination rate (``HALLUCINATION_KEY``); a score the record lacks is
    left out."""
    seg = record.get("segmentation") or {}
    paired = record.get("paired") or {}
    flat = {k: seg[k] for k in SEGMENTATION_KEYS if k in seg}
    if "dist" in paired:
        flat["dist"] = paired["dist"]
    flat.update({f"acc_{d}": v for d, v in (paired.get("acc") or {}).items()})
    flips = seg.get("flips") or {}
    flat.update({k: flips[k] for k in FLIP_KEYS if flips.get(k) is not None})
    hallucination = seg.get("hallucination") or {}
    if hallucination.get(HALLUCINATION_KEY) is not None:
        flat[HALLUCINATION_KEY] = hallucination[HALLUCINATION_KEY]
    return flat


def image_set_digest(folder: str | Path, role: str = "translated image") -> str:
    """sha256 (hex) over the sorted relative names, sizes and contents of the image files below ``folder``:
    two folders of the same digest hold the same images under the same names. ``role`` names the images in an
    error (`scan_images`). Each file is hashed in blocks (`file_digest`), so no image is held whole in memory."""
    root = Path(folder)
    total = hashlib.sha256()
    for path in sorted(scan_images(root, role), key=lambda p: p.relative_to(root).as_posix()):
        content = file_digest(path, role)
        total.update(f"{path.relative_to(root).as_posix()}\0{path.stat().st_size}\0{content}\n".encode())
    return total.hexdigest()


def read_run_record(eval_dir: str | Path) -> dict[str, Any] | None:
    """``eval_dir/scores.json``, or None where there is none.

    Raises:
        DataError: the file is not an evaluation record of this format (named, with the fix).
    """
    path = Path(eval_dir) / RECORD_FILE
    if not path.is_file():
        return None
    record = read_json(path, "the evaluation record", limit=MAX_EVAL_RECORD_BYTES,
                       fix="delete it to start the run's evaluation afresh")
    if not isinstance(record, dict) or record.get("format") != EVAL_FORMAT:
        raise DataError(f"{path} is not an evaluation record of format {EVAL_FORMAT!r}; delete it to start the "
                        f"run's evaluation afresh")
    return record


def update_run_record(eval_dir: str | Path, part: dict[str, Any], *, replace: bool = False,
                      writer: FolderWriter | None = None) -> dict[str, Any]:
    """Merge ``part`` into ``eval_dir/scores.json`` (created if absent) and return the whole record.

    Top-level keys of ``part`` replace the record's, except ``images``, whose folders are merged,
    so ``eval seg`` and ``eval paired`` of one run add up to one record. Written atomically.
    ``replace``: start the record afresh with ``part``. ``writer``: RUN/eval opened once (`FolderWriter`), which
    the record is written into wherever the folder is now.

    Raises:
        DataError: an existing file is not an evaluation record of this format (named, with the fix).
    """
    path = Path(eval_dir) / RECORD_FILE
    record = {} if replace else read_run_record(eval_dir) or {}
    images = {**(record.get("images") or {}), **(part.get("images") or {})}
    record.update({k: v for k, v in part.items() if k != "images"})
    record["format"] = EVAL_FORMAT
    if images:
        record["images"] = images
    if writer is None:
        write_json_atomic(path, record)
    else:
        writer.write_json(RECORD_FILE, record)
    return record
