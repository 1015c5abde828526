"""SynthScapes data: street layouts with two content modes, split by K-means into unmatched domains.

A pool of layouts is drawn from a mixture of two scene types, *leafy* (many trees, little
sky and building) and *urban* (facades and sky, few trees). Exactly as the paper builds its
Label->Image benchmark (App. C), every pool layout is described by its class histogram, the
histograms are clustered with K-means (K=2, ``split_by_histogram``), domain A takes the label
maps of cluster I and domain B the photo renderings of cluster II; ``mix`` > 0 adds images from
the opposite cluster (App. D), and ``mix=100`` gives two domains with the same statistics.
Even pool indices can only become A images and odd ones only B images, so no layout is seen
in both domains (the training data stays unpaired at any mix).

The test set is drawn from the same two-mode mixture; for every test label map (testA) the
package writes its exact ground-truth rendering (testB) and its class-id map (testLabels).

The *non-bijective* split (``write_nonbijective_split``, StegoGAN's setting) has one class that exists
in domain B only: domain A takes label maps of layouts without a single pixel of it (``NONBIJECTIVE_CLASS``,
cars), domain B renderings of which ``NONBIJECTIVE_SHARE`` hold it; both from the whole two-mode mixture,
so the other classes keep matched statistics. Its test set (``write_test_set(without=...)``) holds no
pixel of that class either, so every pixel a translation paints as a car is a hallucination.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from srunit._atomic import FolderWriter, check_umask, folder_writer
from srunit.checks import check_int, check_path, check_range
from srunit.data.images import png_bytes
from srunit.datasets.output import require_empty_output
from srunit.datasets.split import split_by_histogram
from srunit.errors import DataError
from srunit.synthscapes.scenes import CAR, CLASS_NAMES, class_fractions, render_labels, render_photo, sample_layout

__all__ = [
    "LEAFY_BIAS", "URBAN_BIAS", "SPLIT_CODES", "HELDOUT_SPLITS", "NONBIJECTIVE_CLASS", "NONBIJECTIVE_SHARE",
    "pool_layout", "heldout_layout", "mixture_layout", "numbered_png_names", "write_train_split",
    "write_nonbijective_split", "write_test_set", "make_synthscapes",
]

# Bounds of the generator's sizes: 100,000 layouts or test images (about 1 GB of 64 px PNGs), 16 to 4096 px images.
MAX_IMAGES = 100_000
MIN_SIZE = 16
MAX_SIZE = 4096
MAX_SEED = 2**64 - 1

# Vegetation-bias ranges of the two scene types (see ``sample_layout``).
URBAN_BIAS = (0.0, 0.3)
LEAFY_BIAS = (0.6, 1.0)
# Seed-stream codes, fixed forever so files stay reproducible (0-2 were used by an earlier generator).
SPLIT_CODES = {"pool": 3, "test": 4, "segmenter": 5, "validation": 6}
# Held-out sets with exact ground truth: the test set scores benchmarks, the validation set scores tuning
# trials (`srunit tune`); their layouts come from different seed streams, so they share no image.
HELDOUT_SPLITS = ("test", "validation")
# The non-bijective split: the class only domain B holds, and the share of domain B's images that hold it (the
# largest share of the StegoGAN paper's Google_mismatch sets: 65% of its maps show highways).
NONBIJECTIVE_CLASS = CAR
NONBIJECTIVE_SHARE = 0.65
# Layouts drawn at most per image wanted before giving up (about 1 in 4 layouts holds no car).
_MAX_DRAWS_PER_IMAGE = 100


def mixture_layout(code: int, index: int, size: int, seed: int) -> tuple[np.ndarray, np.random.Generator]:
    """Layout ``index`` of seed stream ``code``: leafy or urban with probability 1/2, and its render generator."""
    ss_layout, ss_render = np.random.SeedSequence([seed, code, index]).spawn(2)
    rng = np.random.default_rng(ss_layout)
    low, high = LEAFY_BIAS if rng.random() < 0.5 else URBAN_BIAS
    return sample_layout(rng, size, rng.uniform(low, high)), np.random.default_rng(ss_render)


def pool_layout(index: int, *, size: int, seed: int) -> tuple[np.ndarray, np.random.Generator]:
    """Layout ``index`` of the training pool and the generator that renders it (``render_photo``)."""
    return mixture_layout(SPLIT_CODES["pool"], index, size, seed)


def heldout_layout(index: int, *, size: int, seed: int, split: str = "test") -> tuple[np.ndarray, np.random.Generator]:
    """Layout ``index`` of the test (or validation) set and its rendering generator."""
    return mixture_layout(SPLIT_CODES[split], index, size, seed)


def _mean_fractions(labels: list[np.ndarray]) -> dict[str, float]:
    mean = np.mean([class_fractions(lab) for lab in labels], axis=0)
    return {name: round(float(v), 4) for name, v in zip(CLASS_NAMES, mean)}


def numbered_png_names(n: int) -> list[str]:
    """["0000.png", "0001.png", ...]: n names, zero-padded to 4 or more digits so they sort."""
    digits = max(4, len(str(n - 1)))
    return [f"{i:0{digits}d}.png" for i in range(n)]


def write_train_split(root: str | Path | FolderWriter, *, num_pool: int = 400, size: int = 64, seed: int = 0,
                      mix: float = 0.0) -> dict[str, Any]:
    """Write ``root/trainA`` (label colour maps) and ``root/trainB`` (renderings); returns the manifest.

    Args:
        num_pool: layouts in the pool; each domain gets roughly a quarter of it at ``mix=0``
            and half of it at ``mix=100``.
        size: image side in pixels.
        seed: seeds the layouts, K-means and the mixing draw.
        mix: percent of the opposite cluster added to each domain (paper App. D), 0..100.

    The manifest (also written to ``root/manifest.json``) records the pool indices of each
    domain, the K-means cluster sizes and each domain's mean class fractions.

    Raises:
        ConfigError: a count, the size or ``mix`` is out of range; DataError: ``root`` is not empty.
    """
    check_umask("write_train_split")  # a folder of mode 0077 was left behind
    check_int(num_pool, "--num-pool", 8, maximum=MAX_IMAGES)
    check_int(size, "--size", MIN_SIZE, maximum=MAX_SIZE)
    check_int(seed, "--seed", 0, maximum=MAX_SEED)  # numpy's seeds are non-negative: -1 was a ValueError traceback
    if not isinstance(root, FolderWriter):  # a folder given opened is its opener's to check
        require_empty_output(root, "SynthScapes data folder")
    with folder_writer(root) as writer:  # opened once: the data go into it wherever it is moved meanwhile
        layouts = [pool_layout(i, size=size, seed=seed) for i in range(num_pool)]
        hist = np.stack([class_fractions(lab) for lab, _ in layouts])
        split = split_by_histogram(hist, seed=seed, mix=mix)
        a = [int(i) for i in split.a if i % 2 == 0]
        b = [int(i) for i in split.b if i % 2 == 1]
        for folder, indices, render in (("trainA", a, lambda lab, _: render_labels(lab)),
                                        ("trainB", b, lambda lab, rng: render_photo(lab, rng))):
            for name, i in zip(numbered_png_names(len(indices)), indices):
                writer.write_bytes(f"{folder}/{name}", png_bytes(Image.fromarray(render(*layouts[i]))))
        manifest: dict[str, Any] = {
            "format": "srunit-synthscapes/1", "size": size, "seed": seed, "mix": mix, "num_pool": num_pool,
            "classes": list(CLASS_NAMES),
            "cluster_sizes": [int((split.cluster == 0).sum()), int((split.cluster == 1).sum())],
            "trainA": {"pool_indices": a, "class_fractions": _mean_fractions([layouts[i][0] for i in a])},
            "trainB": {"pool_indices": b, "class_fractions": _mean_fractions([layouts[i][0] for i in b])},
        }
        writer.write_json("manifest.json", manifest)
        return manifest


def _layouts_without(cls: int | None, count: int, draw: Any) -> Any:
    """``count`` (index, layout, render generator) of ``draw(i)`` for i = 0, 1, ..., those holding class ``cls``
    passed over (none when ``cls`` is None)."""
    found = 0
    for i in range(count * (_MAX_DRAWS_PER_IMAGE if cls is not None else 1)):
        lab, rng = draw(i)
        if cls is None or not (lab == cls).any():
            yield i, lab, rng
            found += 1
            if found == count:
                return
    what = "" if cls is None else f" without {CLASS_NAMES[cls]}"
    raise DataError(f"fewer than {count} of the stream's first {i + 1} layouts are{what}; ask for fewer images")


def write_test_set(root: str | Path | FolderWriter, *, num_test: int = 64, size: int = 64, seed: int = 0,
                   split: str = "test", without: int | None = None, summary_file: str | None = None
                   ) -> dict[str, Any]:
    """Write the paired test set: ``testA`` label colour maps, ``testB`` their exact renderings and
    ``testLabels`` their class-id maps (8-bit single-channel PNG), same file names; returns a summary.

    ``split="validation"`` writes the validation set instead (the same folder names), whose layouts share
    none with the test set's: tuning scores on it, so the test set stays unseen until a study is confirmed.
    ``without`` (a class id): only layouts without a pixel of that class, the first ``num_test`` of the split's
    stream (the non-bijective condition's test set). ``summary_file``: a name the summary is also written to in
    ``root`` (last, so that it marks the set complete).
    """
    check_umask("write_test_set")  # a folder of mode 0077 was left behind
    if split not in HELDOUT_SPLITS:
        raise ValueError(f"split must be one of {HELDOUT_SPLITS}, got {split!r}")
    check_int(num_test, "--num-test", 1, maximum=MAX_IMAGES)
    check_int(size, "--size", MIN_SIZE, maximum=MAX_SIZE)
    check_int(seed, "--seed", 0, maximum=MAX_SEED)  # numpy's seeds are non-negative: -1 was a ValueError traceback
    if without is not None:  # 99 was an IndexError once the folders were made
        check_int(without, "write_test_set: without", 0, maximum=len(CLASS_NAMES) - 1,
                  fix=f"give a class id: {', '.join(f'{i} {n}' for i, n in enumerate(CLASS_NAMES))}")
    if not isinstance(root, FolderWriter):  # a folder given opened is its opener's to check
        for folder in ("testA", "testB", "testLabels"):
            require_empty_output(Path(root) / folder, "SynthScapes test folder")
    with folder_writer(root) as writer:  # opened once: the data go into it wherever it is moved meanwhile
        labels = []
        indices = []
        layouts = _layouts_without(without, num_test, lambda i: heldout_layout(i, size=size, seed=seed, split=split))
        for name, (i, lab, rng) in zip(numbered_png_names(num_test), layouts):
            labels.append(lab)
            indices.append(i)
            writer.write_bytes(f"testA/{name}", png_bytes(Image.fromarray(render_labels(lab))))
            writer.write_bytes(f"testB/{name}", png_bytes(Image.fromarray(render_photo(lab, rng))))
            writer.write_bytes(f"testLabels/{name}", png_bytes(Image.fromarray(lab)))
        summary: dict[str, Any] = {"count": num_test, "size": size, "seed": seed,
                                   "class_fractions": _mean_fractions(labels)}
        if without is not None:
            summary.update(without=CLASS_NAMES[without], layout_indices=indices)
        summary = summary if split == "test" else {**summary, "split": split}
        if summary_file is not None:
            writer.write_json(summary_file, summary)
        return summary


def write_nonbijective_split(root: str | Path, *, num_pool: int = 400, size: int = 64, seed: int = 0,
                             b_only: int = NONBIJECTIVE_CLASS, share: float = NONBIJECTIVE_SHARE) -> dict[str, Any]:
    """Write ``root/trainA`` (label colour maps without a pixel of class ``b_only``) and ``root/trainB``
    (renderings, a ``share`` of which hold it); returns the manifest.

    Each domain gets ``num_pool // 4`` images, as many as the unmatched split gives at ``mix=0`` (roughly), from
    the training pool's stream: its even layouts feed domain A, its odd ones domain B (no layout is in both),
    taken in index order until each domain is full. Both domains come from the whole two-mode mixture, so the
    other classes keep matched statistics.

    Raises:
        ConfigError: a count, the size or ``share`` is out of range; DataError: ``root`` is not empty, or the
            pool stream holds too few layouts of a kind.
    """
    check_umask("write_nonbijective_split")  # a folder of mode 0077 was left behind
    check_int(num_pool, "--num-pool", 8, maximum=MAX_IMAGES)
    check_int(size, "--size", MIN_SIZE, maximum=MAX_SIZE)
    check_int(seed, "--seed", 0, maximum=MAX_SEED)  # numpy's seeds are non-negative: -1 was a ValueError traceback
    check_range(share, "share", 0.0, 1.0)
    root = Path(root)
    require_empty_output(root, "SynthScapes data folder")
    with FolderWriter(root) as writer:  # opened once: the data go into it wherever it is moved meanwhile
        n = num_pool // 4
        wanted = {("A", False): n, ("B", True): round(share * n), ("B", False): n - round(share * n)}
        picked: dict[tuple[str, bool], list[int]] = {k: [] for k in wanted}
        layouts: dict[int, tuple[np.ndarray, np.random.Generator]] = {}
        i = 0
        while any(len(picked[k]) < wanted[k] for k in wanted):
            if i >= _MAX_DRAWS_PER_IMAGE * num_pool:
                raise DataError(f"the first {i} pool layouts hold too few images with and without "
                                f"{CLASS_NAMES[b_only]} for a non-bijective split of {n} images per domain")
            lab, rng = pool_layout(i, size=size, seed=seed)
            key = ("A" if i % 2 == 0 else "B", bool((lab == b_only).any()))
            if key in picked and len(picked[key]) < wanted[key]:
                picked[key].append(i)
                layouts[i] = (lab, rng)
            i += 1
        a = picked[("A", False)]
        b = sorted(picked[("B", True)] + picked[("B", False)])
        for folder, indices, render in (("trainA", a, lambda lab, _: render_labels(lab)),
                                        ("trainB", b, lambda lab, rng: render_photo(lab, rng))):
            for name, j in zip(numbered_png_names(len(indices)), indices):
                writer.write_bytes(f"{folder}/{name}", png_bytes(Image.fromarray(render(*layouts[j]))))
        manifest: dict[str, Any] = {
            "format": "srunit-synthscapes/1", "size": size, "seed": seed, "condition": "nonbijective",
            "num_pool": num_pool, "classes": list(CLASS_NAMES), "b_only": CLASS_NAMES[b_only], "share": share,
            "pool_layouts_drawn": i,
            "trainA": {"pool_indices": a, "class_fractions": _mean_fractions([layouts[j][0] for j in a])},
            "trainB": {"pool_indices": b, "class_fractions": _mean_fractions([layouts[j][0] for j in b]),
                       "holding_b_only": len(picked[("B", True)])},
        }
        writer.write_json("manifest.json", manifest)
        return manifest


def make_synthscapes(root: str | Path | FolderWriter, *, num_pool: int = 400, num_test: int = 64, size: int = 64,
                     seed: int = 0, mix: float = 0.0) -> dict[str, Any]:
    """Write a whole SynthScapes dataset under ``root`` and return its manifest.

    ``root/trainA``, ``root/trainB`` as ``write_train_split``; ``root/testA``, ``testB``,
    ``testLabels`` as ``write_test_set``; ``root/manifest.json`` describes both. Deterministic:
    the same arguments give byte-identical files. ``root``: a folder, or the writer of one opened once (what
    `srunit._outputs.building_folder` yields); both splits and the manifest are written relative to it.
    """
    if not isinstance(root, FolderWriter):  # an int was Python's "expected str, bytes or os.PathLike"
        root = check_path(root, "make_synthscapes: root")
        check_umask("make_synthscapes")
    check_int(num_test, "--num-test", 1, maximum=MAX_IMAGES)  # before the training split is rendered, not after
    if not isinstance(root, FolderWriter):  # a folder given opened is its opener's to check
        require_empty_output(root, "SynthScapes data folder")
    with folder_writer(root) as writer:  # opened once: both splits and the manifest go into this one folder
        manifest = write_train_split(writer, num_pool=num_pool, size=size, seed=seed, mix=mix)
        manifest["test"] = write_test_set(writer, num_test=num_test, size=size, seed=seed)
        writer.write_json("manifest.json", manifest)
    return manifest
