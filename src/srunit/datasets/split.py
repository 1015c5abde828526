"""Building unpaired training sets with *unmatched* semantics statistics (paper App. C and D).

The SRUNIT paper constructs its Label->Image and Maps benchmarks so that domain A and domain B
show different content statistics: every image is described by a histogram (class frequencies
of its label map, or grey levels of its map image), the histograms are clustered with K-means
(K=2), and the two domains are drawn from different clusters. App. D adds ``mix`` percent of
each domain from the opposite cluster to make the statistics more alike again.

Cluster naming used throughout this module (deterministic, independent of how sklearn numbers
its clusters): **cluster I is the K-means cluster holding more images; on a tie, the one that
holds image index 0.** Domain A is always built from cluster I, domain B from cluster II.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from srunit._atomic import FolderWriter, check_umask, folder_writer
from srunit._outputs import name_max
from srunit.checks import MAX_CLASSES, check_ignore_index, check_int, check_range
from srunit.data.files import pair_by_stem, refuse_nested_inputs, scan_images
from srunit.data.images import load_rgb
from srunit.data.labels import CITYSCAPES_CLASSES, load_label_map
from srunit.datasets.output import require_empty_output
from srunit.errors import ConfigError, DataError

__all__ = [
    "GREY_BUCKET_WIDTH",
    "NUM_GREY_BUCKETS",
    "SPLIT_MODES",
    "SplitMode",
    "SplitResult",
    "class_histograms",
    "grey_histograms",
    "place_files",
    "split_by_histogram",
    "split_by_ratio",
    "split_folders",
    "write_split",
]

SplitMode = Literal["labels", "maps"]
SPLIT_MODES: tuple[str, ...] = get_args(SplitMode)

# App. C (Maps): 51 buckets of 5 grey levels; 255 // 5 = 51 would open a 52nd bucket holding
# only the value 255, so the last bucket is widened to 250-255.
GREY_BUCKET_WIDTH = 5
NUM_GREY_BUCKETS = 51


@dataclass(frozen=True)
class SplitResult:
    """Indices (into the histogram rows) of the images that go into each domain.

    Attributes:
        a: sorted int64 indices for domain A (trainA): cluster I plus the extras from cluster II.
        b: sorted int64 indices for domain B (trainB): cluster II plus the extras from cluster I.
        cluster: (N,) int64, 0 for cluster I and 1 for cluster II.
        extra_a: the indices from cluster II added to A (subset of ``a``).
        extra_b: the indices from cluster I added to B (subset of ``b``).
    """

    a: np.ndarray
    b: np.ndarray
    cluster: np.ndarray
    extra_a: np.ndarray
    extra_b: np.ndarray


# --------------------------------------------------------------------------- histograms


def class_histograms(label_maps: Iterable[np.ndarray], num_classes: int, ignore_index: int = 255,
                     *, names: Sequence[str] | None = None) -> np.ndarray:
    """Per-image normalised class frequencies of label maps (paper App. C, Label->Image).

    Args:
        label_maps: (H, W) integer class-id maps.
        num_classes: C; valid ids are 0..C-1.
        ignore_index: id of pixels that are not counted (Cityscapes uses 255).
        names: optional file names used in error messages instead of "label map #i".

    Returns:
        (N, C) float64, each row sums to 1.

    Raises:
        ConfigError: ``num_classes`` < 1.
        DataError: a map is not 2-D, holds an id outside 0..C-1 other than ``ignore_index``,
            or holds only ignored pixels (its frequencies would be undefined).
    """
    check_int(num_classes, "--classes", 1, maximum=MAX_CLASSES, fix="pass the number of classes of the label maps")
    rows: list[np.ndarray] = []
    for i, lab in enumerate(label_maps):
        what = names[i] if names is not None else f"label map #{i}"
        lab = np.asarray(lab)
        if lab.ndim != 2:
            raise DataError(f"{what} has shape {lab.shape}, expected a single-channel (H, W) class-id map; "
                            f"save label maps as 8-bit grayscale PNGs of class ids")
        flat = lab.reshape(-1).astype(np.int64)
        valid = flat[flat != ignore_index]
        bad = (valid < 0) | (valid >= num_classes)
        if bad.any():
            raise DataError(f"{what} holds class id {int(valid[bad][0])}, outside 0..{num_classes - 1} and not "
                            f"the ignore index {ignore_index}; pass the right --classes or --ignore-index")
        if valid.size == 0:
            raise DataError(f"{what} holds only ignored pixels (id {ignore_index}); remove it from the "
                            f"label folder or pass the right --ignore-index")
        # bincount is the vectorised per-class pixel count.
        rows.append(np.bincount(valid, minlength=num_classes).astype(np.float64) / valid.size)
    if not rows:
        raise DataError("no label maps were given; point --labels at a folder of label maps")
    return np.stack(rows)


def grey_histograms(images: Iterable[np.ndarray], *, names: Sequence[str] | None = None) -> np.ndarray:
    """Per-image normalised 51-bucket grey-level histograms (paper App. C, Maps).

    Buckets are 0-4, 5-9, ..., 245-249, 250-255. RGB images are converted to grey with the
    ITU-R 601 luma weights (the ones PIL's "L" mode uses), rounded to the nearest level.

    Args:
        images: (H, W, 3) or (H, W) uint8 arrays.
        names: optional file names used in error messages.

    Returns:
        (N, 51) float64, each row sums to 1.
    """
    rows: list[np.ndarray] = []
    for i, img in enumerate(images):
        what = names[i] if names is not None else f"image #{i}"
        arr = np.asarray(img)
        if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
            raise DataError(f"{what} has dtype {arr.dtype} and shape {arr.shape}, expected uint8 (H, W) or "
                            f"(H, W, 3); load it with srunit.data.load_rgb")
        if arr.ndim == 3:
            # Integer arithmetic keeps the result exact and identical on every platform.
            rgb = arr.astype(np.int32)
            grey = (rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114 + 500) // 1000
        else:
            grey = arr.astype(np.int32)
        bucket = np.minimum(grey.reshape(-1) // GREY_BUCKET_WIDTH, NUM_GREY_BUCKETS - 1)
        if bucket.size == 0:
            raise DataError(f"{what} has no pixels; remove the empty image")
        rows.append(np.bincount(bucket, minlength=NUM_GREY_BUCKETS).astype(np.float64) / bucket.size)
    if not rows:
        raise DataError("no images were given; point the command at a folder of map images")
    return np.stack(rows)


# --------------------------------------------------------------------------- splitting


def _check_hist(hist: np.ndarray) -> np.ndarray:
    h = np.asarray(hist, dtype=np.float64)
    if h.ndim != 2 or h.shape[0] < 2:
        raise DataError(f"need histograms of shape (N >= 2, bins), got {h.shape}; provide at least two images")
    if not np.isfinite(h).all():
        raise DataError("histograms contain NaN or infinity; recompute them from valid images")
    return h


def _kmeans(h: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """K-means K=2; returns (cluster (N,), centroids (2, bins)) in the module's cluster I/II order."""
    from sklearn.cluster import KMeans  # imported lazily: sklearn is slow to import

    # Checked up front: sklearn would only warn and return a single cluster.
    if len(np.unique(h, axis=0)) < 2:
        raise DataError(f"all {len(h)} histograms are identical, so they cannot be split into two clusters; "
                        f"the images need differing content")
    # sklearn takes a random_state below 2**32; SynthScapes' seeds go to 2**64 - 1 (`data split` refuses those
    # above), so the larger ones are folded into that range rather than ending in sklearn's traceback.
    km = KMeans(n_clusters=2, n_init=10, random_state=seed % 2**32).fit(h)
    labels = km.labels_.astype(np.int64)
    counts = np.bincount(labels, minlength=2)
    # Relabel so that cluster I (0) is the larger one, tie -> the one holding index 0: sklearn's
    # own numbering depends on initialisation and would flip A and B between seeds.
    first = 0 if counts[0] > counts[1] or (counts[0] == counts[1] and labels[0] == 0) else 1
    order = np.array([first, 1 - first])
    return (labels != first).astype(np.int64), km.cluster_centers_[order]


def _extras(pool: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    # One permutation prefix per pool: the 10% set is contained in the 10% + mix set, and the
    # set for a smaller mix is contained in that for a larger one (same seed).
    return np.sort(rng.permutation(pool)[:n])


def _assemble(cluster: np.ndarray, n_extra_a: int, n_extra_b: int, seed: int) -> SplitResult:
    idx = np.arange(len(cluster), dtype=np.int64)
    one, two = idx[cluster == 0], idx[cluster == 1]
    # Separate child streams so the draw for B does not depend on how many A drew.
    extra_a = _extras(two, n_extra_a, np.random.default_rng([seed, 0]))
    extra_b = _extras(one, n_extra_b, np.random.default_rng([seed, 1]))
    return SplitResult(a=np.union1d(one, extra_a), b=np.union1d(two, extra_b), cluster=cluster,
                       extra_a=extra_a, extra_b=extra_b)


def split_by_histogram(hist: np.ndarray, *, seed: int, mix: float = 0.0) -> SplitResult:
    """Label->Image split (paper App. C): K-means (K=2) on per-image class histograms.

    Domain A = cluster I (the larger K-means cluster; tie -> the one holding index 0), domain B =
    cluster II. With ``mix`` > 0 (App. D), A also gets round(mix/100 * |II|) images drawn (seeded)
    from cluster II and B gets round(mix/100 * |I|) images from cluster I.

    Args:
        hist: (N, bins) histograms, e.g. from ``class_histograms``.
        seed: seeds K-means (``random_state``) and the mixing draw.
        mix: percent of the opposite cluster added to each domain, 0..100.
    """
    h = _check_hist(hist)
    check_range(mix, "--mix", 0.0, 100.0)
    cluster, _ = _kmeans(h, seed)
    n_two, n_one = int((cluster == 1).sum()), int((cluster == 0).sum())
    return _assemble(cluster, round(mix / 100 * n_two), round(mix / 100 * n_one), seed)


def split_by_ratio(hist: np.ndarray, *, seed: int, other_fraction: float = 0.10,
                   mix: float = 0.0) -> SplitResult:
    """Maps split (paper App. C): K-means (K=2), then rank by the ratio of centroid distances.

    d_I and d_II are the Euclidean distances of each histogram to the centroids of cluster I
    (the larger K-means cluster, tie -> the one holding index 0) and cluster II. Images are
    ranked by d_I / d_II ascending (stable: ties keep index order); the first ceil(N/2) form
    cluster I, the rest cluster II. So the two halves are balanced even when K-means is not.
    Domain A = cluster I + round(other_fraction * |II|) + round(mix/100 * |II|) images of
    cluster II; domain B = cluster II + the same fractions of cluster I (drawn seeded).

    Args:
        hist: (N, 51) histograms, e.g. from ``grey_histograms``.
        seed: seeds K-means and the draws.
        other_fraction: the paper's 10% of the other cluster, 0..1.
        mix: App. D extra percent of the other cluster, 0..100.

    Raises:
        ConfigError: a fraction out of range, or other_fraction + mix/100 > 1.
    """
    h = _check_hist(hist)
    check_range(other_fraction, "--other-fraction", 0.0, 1.0)
    check_range(mix, "--mix", 0.0, 100.0)
    if other_fraction + mix / 100 > 1.0 + 1e-12:
        raise ConfigError(f"--other-fraction {other_fraction} plus --mix {mix}% exceeds the whole other cluster; "
                          f"lower --mix to at most {100 * (1 - other_fraction):g}")
    _, centroids = _kmeans(h, seed)
    d = np.linalg.norm(h[:, None, :] - centroids[None, :, :], axis=2)
    # A histogram sitting on centroid II gives d_II = 0; the ratio is then +inf (least like I).
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(d[:, 1] > 0, d[:, 0] / np.where(d[:, 1] > 0, d[:, 1], 1.0), np.inf)
    order = np.argsort(ratio, kind="stable")
    cluster = np.ones(len(h), dtype=np.int64)
    cluster[order[: (len(h) + 1) // 2]] = 0
    n_one, n_two = int((cluster == 0).sum()), int((cluster == 1).sum())
    return _assemble(cluster, round(other_fraction * n_two) + round(mix / 100 * n_two),
                     round(other_fraction * n_one) + round(mix / 100 * n_one), seed)


# --------------------------------------------------------------------------- writing


def _unique_names(files: Sequence[Path]) -> list[str]:
    # Datasets often repeat file names across sub-folders (e.g. 1.jpg in train/ and val/);
    # a numbered suffix keeps every source file without silently dropping one.
    # Each name's suffixes go on from the last one it took (a suffix found taken stays taken): starting again at
    # __1 for every repeat was quadratic, 100 s for 8,000 sub-folders each holding an image.png.
    seen: set[str] = set()
    last_suffix: dict[str, int] = {}
    names: list[str] = []
    for f in files:
        name, k = f.name, last_suffix.get(f.name, 0)
        while name in seen:
            k += 1
            name = f"{f.stem}__{k}{f.suffix}"
        last_suffix[f.name] = k
        seen.add(name)
        names.append(name)
    return names


def _check_suffixed_names(files: Sequence[Path], names: Sequence[str], folder: Path) -> None:
    """A repeated name's suffix may make it too long for the file system: refused before any file is placed. It
    failed at that file, advising --copy for a link (which failed the same way)."""
    limit = name_max(folder)
    for src, name in zip(files, names, strict=True):
        if len(os.fsencode(name)) > limit:
            raise DataError(f"{src} would be placed as {name[:40]}...{name[-12:]} ({len(os.fsencode(name))} bytes: its "
                            f"name repeats in another sub-folder, and each repeat gets a suffix __N), longer than "
                            f"the {limit} bytes this file system takes; rename it or the files of that name to "
                            f"shorter names (nothing was written)")


def write_split(files_a: list[Path], files_b: list[Path], out: Path | FolderWriter, *, link: bool = True,
                manifest_extra: Mapping[str, Any]) -> None:
    """Materialise a split as ``out/trainA``, ``out/trainB`` and ``out/manifest.json`` (App. C).

    Files are symlinked (absolute targets) or, with ``link=False``, copied. Names are kept;
    a repeated name gets a ``__1``, ``__2``... suffix before the extension. The manifest holds
    ``manifest_extra`` (e.g. mode, seed, mix), the counts and, per domain, the exact list of
    ``{"name": ..., "source": ...}`` entries in order. ``out``: a folder, or the writer of one opened once (what
    `srunit._outputs.building_folder` yields), which every file is written relative to.

    Raises:
        DataError: ``out`` exists and is not empty, a source file is missing, or a symlink
            cannot be made (pass --copy).
    """
    _require_empty(out)
    for f in [*files_a, *files_b]:
        if not Path(f).is_file():
            raise DataError(f"source file {f} does not exist; check the --images-a/--images-b folders")
    manifest: dict[str, Any] = dict(manifest_extra)
    manifest["counts"] = {"trainA": len(files_a), "trainB": len(files_b)}
    with folder_writer(out) as writer:
        for sub, files in (("trainA", files_a), ("trainB", files_b)):
            manifest[sub] = place_into(files, writer, sub, link=link)
        writer.write_json("manifest.json", manifest)


def _require_empty(out: str | Path | FolderWriter) -> None:
    """`require_empty_output` of a folder given by its path; one given opened (`FolderWriter`) is its opener's."""
    if not isinstance(out, FolderWriter):
        require_empty_output(out)


def place_files(files: Sequence[Path], folder: Path | FolderWriter, *, link: bool = True) -> list[dict[str, str]]:
    """Symlink (absolute targets) or copy ``files`` into ``folder`` (made where absent; or the writer of a folder
    opened once, `FolderWriter`) under their names (a repeated name gets a ``__1``, ``__2``... suffix); returns
    ``{"name": ..., "source": ...}`` per file, in order.

    Raises:
        DataError: a symlink cannot be made (pass --copy).
    """
    with folder_writer(folder) as writer:
        names = _unique_names([Path(f) for f in files])
        _check_suffixed_names(files, names, writer.folder)
        entries = []
        for src, name in zip(files, names, strict=True):
            src = Path(src).resolve()
            if link:
                try:
                    writer.symlink(src, name)
                except OSError as e:
                    raise DataError(f"cannot create symlink {writer.folder / name} -> {src} ({e}); pass --copy to "
                                    f"copy files") from e
            else:
                writer.copy_file(src, name)
            entries.append({"name": name, "source": str(src)})
        return entries


def place_into(files: Sequence[Path], writer: FolderWriter, folder: str, *, link: bool = True
               ) -> list[dict[str, str]]:
    """`place_files` into the folder ``folder`` below the folder ``writer`` opened (made where absent)."""
    with writer.subfolder(folder) as sub:
        return place_files(files, sub, link=link)


def split_folders(out: str | Path | FolderWriter, *, images_a: str | Path, images_b: str | Path,
                  mode: SplitMode = "labels", labels: str | Path | None = None, palette: str | None = None,
                  classes: int | None = None, ignore_index: int | None = None, mix: float = 0.0,
                  other_fraction: float | None = None, seed: int = 0, link: bool = True) -> SplitResult:
    """Split the files of two folders into ``out/trainA`` and ``out/trainB`` by histogram clustering (App. C, D).

    The histograms come from ``labels``: class-id label maps in ``labels`` mode (class histograms,
    ``split_by_histogram``), map images in ``maps`` mode (grey histograms, ``split_by_ratio``;
    default: ``images_a``). Files of ``labels``, ``images_a`` and ``images_b`` belong together by
    name stem (``pair_by_stem``); trainA gets the ``images_a`` files of domain A's indices, trainB
    the ``images_b`` files of domain B's. Written by ``write_split``, with the settings in the manifest.
    ``other_fraction`` belongs to ``maps`` mode (default 0.10, the paper's); labels mode refuses it. ``palette``,
    ``classes`` and ``ignore_index`` (default 255) belong to ``labels`` mode; maps mode refuses them.

    Raises:
        ConfigError: a required option is missing or a value is out of range.
        DataError: ``out`` is not empty, a folder is missing, or a file has no partner.
    """
    check_umask("split_folders")  # a folder of mode 0077 was left behind
    out = out if isinstance(out, FolderWriter) else Path(out)
    if mode not in SPLIT_MODES:
        raise ConfigError(f"--mode: invalid value {mode!r}; allowed: {', '.join(SPLIT_MODES)}")
    if mode == "maps":  # grey histograms of map images: no classes. They were taken and had no effect, without a word
        given = [f"--{option} {value}" for option, value in (("palette", palette), ("classes", classes),
                                                              ("ignore-index", ignore_index)) if value is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} applies to --mode labels only (the maps split of App. C clusters "
                              f"grey histograms of the map images, which hold no classes); drop it or use --mode "
                              f"labels")
    ignore_index = 255 if ignore_index is None else ignore_index
    check_ignore_index(ignore_index)
    if check_int(seed, "--seed", 0) >= 2**32:  # K-means' random_state
        raise ConfigError(f"--seed must be below 2**32 = {2**32}, got {seed}; pass a smaller seed")
    if mode == "labels" and other_fraction is not None:
        raise ConfigError(f"--other-fraction {other_fraction} applies to --mode maps only (the labels split of App. C "
                          f"adds nothing of the other cluster; --mix adds a share of it); drop it or use --mode maps")
    if other_fraction is None:
        other_fraction = 0.10
    _require_empty(out)
    # A folder inside another was read as the outer one's too (the CLI refused it; this API did not)
    refuse_nested_inputs((("--images-a", images_a), ("--images-b", images_b), ("--labels", labels)))
    hist_dir = Path(labels) if labels is not None else (Path(images_a) if mode == "maps" else None)
    if hist_dir is None:
        raise ConfigError("--labels is required with --mode labels; pass the folder of class-id label maps")
    if mode == "labels" and classes is None:
        if palette != "cityscapes":
            raise ConfigError("--classes is required with --mode labels; pass the number of classes, e.g. --classes 19")
        classes = len(CITYSCAPES_CLASSES)
    # Without --labels (maps mode) the histograms come from --images-a: a bad folder is named as the user gave it.
    hist_option = "--labels" if labels is not None else "--images-a"
    folders = ((hist_dir, hist_option), (Path(images_a), "--images-a"), (Path(images_b), "--images-b"))
    classes = classes or 0  # only read with --mode labels, where it is set by now
    triples = pair_by_stem(*((scan_images(d, option, hint=f"pass {option} DIR"), d, option) for d, option in folders))
    sources = [t[0] for t in triples]
    names = [str(p) for p in sources]
    if mode == "labels":
        hist = class_histograms((load_label_map(p, palette=palette) for p in sources), classes, ignore_index,
                                names=names)
        result = split_by_histogram(hist, seed=seed, mix=mix)
    else:
        hist = grey_histograms((np.asarray(load_rgb(p)) for p in sources), names=names)
        result = split_by_ratio(hist, seed=seed, other_fraction=other_fraction, mix=mix)
    extra: dict[str, Any] = {"mode": mode, "seed": seed, "mix": mix, "histogram_source": str(hist_dir),
                             "cluster_sizes": [int((result.cluster == 0).sum()), int((result.cluster == 1).sum())]}
    if mode == "maps":
        extra["other_fraction"] = other_fraction
    write_split([triples[i][1] for i in result.a], [triples[i][2] for i in result.b], out, link=link,
                manifest_extra=extra)
    return result
