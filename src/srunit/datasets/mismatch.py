"""A mismatch split of one's own data: a class that domain B holds and domain A never does (StegoGAN's setting).

StegoGAN (Wu et al., CVPR 2024) builds its non-bijective benchmarks from paired data with label maps: domain A
takes the images without a class c (satellite tiles without highways, healthy brain scans), domain B a chosen
share of images that hold c (maps with highways, scans with tumours: 0 to 65% in its Google_mismatch sets, 60%
in BRATS_mismatch), and the test set holds only images without c, so that every pixel of c in a translation is
a hallucination (`srunit.eval.hallucination`). `mismatch_split` does the same for files of two folders that
belong together by name stem with a folder of label maps:

- an image *holds* c when more than ``min_share`` of its labelled pixels are c, and *lacks* c when none is;
  images in between are left out of both (BRATS_mismatch: tumorous above 1%, healthy at 0);
- the test set takes ``num_test`` of the images that lack c (their A files, B files and label maps: testA,
  testB, testLabels); no image is in two of trainA, trainB and the test set;
- trainA and trainB get n images each, n as large as the images allow: trainA n images that lack c, trainB
  round(share n) that hold c and the rest that lack it.

The draws are seeded; the manifest records every file, the counts and the share obtained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srunit._atomic import FolderWriter, folder_writer
from srunit.checks import check_ignore_index, check_int, check_range
from srunit.data.files import pair_by_stem, refuse_nested_inputs, scan_images
from srunit.data.labels import CITYSCAPES_CLASSES, load_label_map
from srunit.datasets.output import require_empty_output
from srunit.datasets.split import place_into
from srunit.errors import ConfigError, DataError

__all__ = ["MismatchSplit", "mismatch_split", "plan_mismatch", "resolve_class"]

MAX_LABEL_ID = 65535  # 16-bit label maps


@dataclass(frozen=True)
class MismatchSplit:
    """Indices (into the paired files, in name order) of each part of a mismatch split."""

    a: list[int]  # trainA: images without the class
    b: list[int]  # trainB: ``b_holding`` of them hold it
    test: list[int]  # images without the class
    b_holding: int
    holding: int  # candidates that hold the class
    lacking: int  # candidates without a pixel of it
    left_out: int  # images with some of it, but not more than min_share


def resolve_class(spec: str | int, palette: str | None) -> int:
    """``--class``: a label id, or with ``--palette cityscapes`` a Cityscapes class name (``car``)."""
    text = str(spec).strip()
    if text.isdigit():
        return check_int(int(text), "--class", 0, maximum=MAX_LABEL_ID)
    if palette == "cityscapes" and text in CITYSCAPES_CLASSES:
        return list(CITYSCAPES_CLASSES).index(text)
    names = f"; with --palette cityscapes one of {', '.join(CITYSCAPES_CLASSES)}" if palette == "cityscapes" else \
        " (class names need --palette cityscapes)"
    raise ConfigError(f"--class {text!r} is not a class: give the label id of the class domain A must not hold{names}")


def _per_domain(share: float, holding: int, rest: int) -> int:
    """The most images per domain (n) that ``holding`` images with the class and ``rest`` without it give: trainA n
    of the rest, trainB round(share n) holding it and n - round(share n) of the rest; 0 where none."""
    n = rest
    while n > 0 and (round(share * n) > holding or 2 * n - round(share * n) > rest):
        n -= 1
    return n


def plan_mismatch(shares: Sequence[float], *, share: float, min_share: float = 0.0, num_test: int = 0,
                  seed: int = 0) -> MismatchSplit:
    """The split of images whose share of class-c pixels is ``shares[i]`` (module docstring).

    Args:
        shares: per image, the fraction of its labelled pixels that are of the class, in [0, 1].
        share: fraction of trainB's images that hold the class, in [0, 1].
        min_share: an image holds the class above this fraction of its pixels, in [0, 1).
        num_test: images without the class held out for testing.
        seed: the draws (which images go where).

    Raises:
        ConfigError: an argument out of range; DataError: too few images for any split (named, with the counts).
    """
    check_range(share, "--share", 0.0, 1.0)
    check_range(min_share, "--min-share", 0.0, 1.0)
    if min_share >= 1.0:
        raise ConfigError("--min-share must be below 100 (an image then never holds the class)")
    check_int(num_test, "--num-test", 0)
    values = np.asarray(shares, dtype=np.float64)
    holding_ids = np.flatnonzero(values > min_share)
    lacking_ids = np.flatnonzero(values == 0)
    # Separate child streams: how many images one group has does not change the other's draws.
    holding = [int(i) for i in np.random.default_rng([seed, 0]).permutation(holding_ids)]
    lacking = [int(i) for i in np.random.default_rng([seed, 1]).permutation(lacking_ids)]
    left_out = len(values) - len(holding) - len(lacking)
    if not lacking:  # `--num-test 1: ... ask for fewer test images` was advised, and no --num-test gives a split
        raise DataError(f"none of the {len(values)} images lacks the class ({len(holding)} hold it, {left_out} left "
                        f"out with at most --min-share of it): trainA and the test images are images without it; "
                        f"give images without it, or choose another --class")
    if num_test > len(lacking):
        raise DataError(f"--num-test {num_test}: only {len(lacking)} of the {len(values)} images lack the class; "
                        f"ask for fewer test images")
    test, rest = sorted(lacking[:num_test]), lacking[num_test:]
    # n per domain: trainA n of the rest, trainB round(share n) holding it and n - round(share n) of the rest.
    n = _per_domain(share, len(holding), len(rest))
    if share > 0 and not holding and left_out:
        # The advice named --share and --num-test, neither of which gives a split: only --min-share kept them out.
        raise DataError(f"no label map holds the class on more than --min-share {100 * min_share:g}% of its labelled "
                        f"pixels (the most is {100 * values.max():.4g}%); lower --min-share")
    if n == 0:
        # Only the changes that give a split are named: --num-test 0 cannot be lowered.
        changes = [*(["change --share"] if any(_per_domain(s / 100, len(holding), len(rest)) for s in range(101))
                     else []),
                   *(["lower --min-share"] if _per_domain(share, len(holding) + left_out, len(rest)) else []),
                   *(["lower --num-test"] if _per_domain(share, len(holding), len(lacking)) else [])]
        raise DataError(f"no split with {100 * share:g}% of trainB holding the class: of {len(values)} images "
                        f"{len(holding)} hold it and {len(lacking)} lack it ({num_test} of those for testing, "
                        f"{left_out} left out with at most --min-share of it); "
                        + (f"{' or '.join(changes)}, or give more images" if changes else "give more images"))
    held = round(share * n)
    if share > 0 and held == 0:
        # `--share 10` of 4 trainB images wrote a "mismatch" split whose trainB holds no image of the class.
        least = next((p for p in range(1, 101) if round(p / 100 * (m := _per_domain(p / 100, len(holding), len(rest))))
                      and m), None)
        raise DataError(f"--share {100 * share:g}% of the {n} trainB images rounds to none holding the class; "
                        + (f"give --share {least} or more, or give more images" if least is not None else
                           "give more images"))
    return MismatchSplit(a=sorted(rest[:n]), b=sorted(holding[:held] + rest[n: 2 * n - held]), test=test,
                         b_holding=held, holding=len(holding), lacking=len(lacking), left_out=left_out)


def mismatch_split(out: str | Path | FolderWriter, *, images_a: str | Path, images_b: str | Path, labels: str | Path,
                   class_id: int, share: float, min_share: float = 0.0, num_test: int = 0,
                   palette: str | None = None, ignore_index: int = 255, seed: int = 0,
                   link: bool = True) -> tuple[MismatchSplit, dict[str, Any]]:
    """Write a mismatch split of the files of ``images_a`` and ``images_b`` (paired by name stem with the label
    maps of ``labels``) to ``out``: trainA, trainB, [testA, testB, testLabels] and manifest.json.

    Files are symlinked, or copied with ``link=False``. Returns the split and the manifest.

    Raises:
        ConfigError: an argument out of range; DataError: ``out`` is not empty, a file has no partner or cannot be
            read, or the images allow no split.
    """
    out = out if isinstance(out, FolderWriter) else Path(out)
    check_ignore_index(ignore_index)
    if check_int(seed, "--seed", 0) >= 2**63:
        raise ConfigError(f"--seed must be below 2**63, got {seed}; pass a smaller seed")
    check_int(class_id, "--class", 0, maximum=MAX_LABEL_ID)
    if class_id == ignore_index:  # never counted, so never held: the advice to change --share wrote no mismatch
        raise ConfigError(f"--class {class_id} is the --ignore-index, whose pixels are not counted: give the id of "
                          f"the class domain A must not hold, or another --ignore-index")
    if not isinstance(out, FolderWriter):  # a folder given opened is its opener's to check
        require_empty_output(out)
    # A folder inside another was read as the outer one's too (the CLI refused it; this API did not)
    refuse_nested_inputs((("--images-a", images_a), ("--images-b", images_b), ("--labels", labels)))
    folders = ((Path(labels), "--labels"), (Path(images_a), "--images-a"), (Path(images_b), "--images-b"))
    triples = pair_by_stem(*((scan_images(d, option, hint=f"pass {option} DIR"), d, option) for d, option in folders))
    shares = []
    for label_file, _, _ in triples:
        lab = load_label_map(label_file, palette=palette)
        labelled = lab != ignore_index
        count = int(labelled.sum())
        if count == 0:
            raise DataError(f"label map {label_file} holds only ignored pixels (id {ignore_index}); remove it with "
                            f"its images or pass the right --ignore-index")
        shares.append(float(np.count_nonzero(labelled & (lab == class_id)) / count))
    if share > 0 and not any(shares):  # no --share or --num-test gives a split that holds it
        raise DataError(f"no label map in {labels} holds class {class_id} (of {len(shares)}); give the id of a class "
                        f"some of its images hold" + (" (a map of 8-bit ids holds 0 to 255)" if class_id > 255 else ""))
    split = plan_mismatch(shares, share=share, min_share=min_share, num_test=num_test, seed=seed)
    with folder_writer(out) as writer:
        manifest: dict[str, Any] = {
            "mode": "mismatch", "class": class_id, "share": share, "min_share": min_share, "seed": seed,
            "labels": str(Path(labels).resolve()),
            "counts": {"trainA": len(split.a), "trainB": len(split.b), "trainB_holding": split.b_holding,
                       "test": len(split.test), "holding": split.holding, "lacking": split.lacking,
                       "left_out": split.left_out},
            "trainA": place_into([triples[i][1] for i in split.a], writer, "trainA", link=link),
            "trainB": place_into([triples[i][2] for i in split.b], writer, "trainB", link=link),
        }
        if split.test:
            for folder, column in (("testA", 1), ("testB", 2), ("testLabels", 0)):
                manifest[folder] = place_into([triples[i][column] for i in split.test], writer, folder, link=link)
        writer.write_json("manifest.json", manifest)
    return split, manifest
