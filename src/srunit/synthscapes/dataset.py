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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from srunit._atomic import write_json_atomic
from srunit.checks import check_int
from srunit.data.images import save_png_atomic
from srunit.datasets.output import require_empty_output
from srunit.datasets.split import split_by_histogram
from srunit.synthscapes.scenes import CLASS_NAMES, class_fractions, render_labels, render_photo, sample_layout

__all__ = [
    "LEAFY_BIAS", "URBAN_BIAS", "SPLIT_CODES", "HELDOUT_SPLITS", "pool_layout", "heldout_layout", "mixture_layout",
    "numbered_png_names", "write_train_split", "write_test_set", "make_synthscapes",
]

# Bounds of the generator's sizes: 100,000 layouts or test images (about 1 GB of 64 px PNGs), 4096 px images.
MAX_IMAGES = 100_000
MAX_SIZE = 4096

# Vegetation-bias ranges of the two scene types (see ``sample_layout``).
URBAN_BIAS = (0.0, 0.3)
LEAFY_BIAS = (0.6, 1.0)
# Seed-stream codes, fixed forever so files stay reproducible (0-2 were used by an earlier generator).
SPLIT_CODES = {"pool": 3, "test": 4, "segmenter": 5, "validation": 6}
# Held-out sets with exact ground truth: the test set scores benchmarks, the validation set scores tuning
# trials (`srunit tune`); their layouts come from different seed streams, so they share no image.
HELDOUT_SPLITS = ("test", "validation")


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


def write_train_split(root: str | Path, *, num_pool: int = 400, size: int = 64, seed: int = 0,
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
    check_int(num_pool, "--num-pool", 8, maximum=MAX_IMAGES)
    check_int(size, "--size", 16, maximum=MAX_SIZE)
    root = Path(root)
    require_empty_output(root, "SynthScapes data folder")
    layouts = [pool_layout(i, size=size, seed=seed) for i in range(num_pool)]
    hist = np.stack([class_fractions(lab) for lab, _ in layouts])
    split = split_by_histogram(hist, seed=seed, mix=mix)
    a = [int(i) for i in split.a if i % 2 == 0]
    b = [int(i) for i in split.b if i % 2 == 1]
    for folder, indices, render in (("trainA", a, lambda lab, _: render_labels(lab)),
                                    ("trainB", b, lambda lab, rng: render_photo(lab, rng))):
        (root / folder).mkdir(parents=True)
        for name, i in zip(numbered_png_names(len(indices)), indices):
            save_png_atomic(Image.fromarray(render(*layouts[i])), root / folder / name)
    manifest: dict[str, Any] = {
        "format": "srunit-synthscapes/1", "size": size, "seed": seed, "mix": mix, "num_pool": num_pool,
        "classes": list(CLASS_NAMES),
        "cluster_sizes": [int((split.cluster == 0).sum()), int((split.cluster == 1).sum())],
        "trainA": {"pool_indices": a, "class_fractions": _mean_fractions([layouts[i][0] for i in a])},
        "trainB": {"pool_indices": b, "class_fractions": _mean_fractions([layouts[i][0] for i in b])},
    }
    write_json_atomic(root / "manifest.json", manifest)
    return manifest


def write_test_set(root: str | Path, *, num_test: int = 64, size: int = 64, seed: int = 0,
                   split: str = "test") -> dict[str, Any]:
    """Write the paired test set: ``testA`` label colour maps, ``testB`` their exact renderings and
    ``testLabels`` their class-id maps (8-bit single-channel PNG), same file names; returns a summary.

    ``split="validation"`` writes the validation set instead (the same folder names), whose layouts share
    none with the test set's: tuning scores on it, so the test set stays unseen until a study is confirmed.
    """
    if split not in HELDOUT_SPLITS:
        raise ValueError(f"split must be one of {HELDOUT_SPLITS}, got {split!r}")
    check_int(num_test, "--num-test", 1, maximum=MAX_IMAGES)
    check_int(size, "--size", 16, maximum=MAX_SIZE)
    root = Path(root)
    for folder in ("testA", "testB", "testLabels"):
        require_empty_output(root / folder, "SynthScapes test folder")
        (root / folder).mkdir(parents=True, exist_ok=True)
    labels = []
    for i, name in enumerate(numbered_png_names(num_test)):
        lab, rng = heldout_layout(i, size=size, seed=seed, split=split)
        labels.append(lab)
        save_png_atomic(Image.fromarray(render_labels(lab)), root / "testA" / name)
        save_png_atomic(Image.fromarray(render_photo(lab, rng)), root / "testB" / name)
        save_png_atomic(Image.fromarray(lab), root / "testLabels" / name)
    summary = {"count": num_test, "size": size, "seed": seed, "class_fractions": _mean_fractions(labels)}
    return summary if split == "test" else {**summary, "split": split}


def make_synthscapes(root: str | Path, *, num_pool: int = 400, num_test: int = 64, size: int = 64,
                     seed: int = 0, mix: float = 0.0) -> dict[str, Any]:
    """Write a whole SynthScapes dataset under ``root`` and return its manifest.

    ``root/trainA``, ``root/trainB`` as ``write_train_split``; ``root/testA``, ``testB``,
    ``testLabels`` as ``write_test_set``; ``root/manifest.json`` describes both. Deterministic:
    the same arguments give byte-identical files.
    """
    manifest = write_train_split(root, num_pool=num_pool, size=size, seed=seed, mix=mix)
    manifest["test"] = write_test_set(root, num_test=num_test, size=size, seed=seed)
    write_json_atomic(Path(root) / "manifest.json", manifest)
    return manifest
