"""srunit.datasets.split: histograms, the K-means splits of paper App. C/D, writing a split, split_folders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.datasets import CITYSCAPES_TRAIN_COLOURS
from srunit.datasets.split import (
    class_histograms,
    grey_histograms,
    split_by_histogram,
    split_by_ratio,
    split_folders,
    write_split,
)
from srunit.errors import ConfigError, DataError


def test_class_histograms_hand_computed() -> None:
    a = np.array([[0, 0, 1], [2, 255, 255]])  # 4 valid pixels: 0,0,1,2
    b = np.full((2, 2), 1)
    h = class_histograms([a, b], num_classes=3)
    np.testing.assert_allclose(h, [[0.5, 0.25, 0.25], [0.0, 1.0, 0.0]])


def test_class_histograms_rejects_bad_ids() -> None:
    with pytest.raises(DataError, match="lab.png.*class id 7"):
        class_histograms([np.array([[0, 7]])], num_classes=3, names=["lab.png"])
    with pytest.raises(DataError, match="only ignored"):
        class_histograms([np.full((2, 2), 255)], num_classes=3)


def test_grey_histograms_buckets() -> None:
    grey = np.array([[0, 4, 5, 9], [249, 250, 255, 128]], dtype=np.uint8)
    h = grey_histograms([grey])
    assert h.shape == (1, 51)
    expected = np.zeros(51)
    expected[0] = 2  # 0, 4
    expected[1] = 2  # 5, 9
    expected[49] = 1  # 249
    expected[50] = 2  # 250 and 255 share the last bucket
    expected[25] = 1  # 128
    np.testing.assert_allclose(h[0], expected / 8)
    # RGB grey pixels (r = g = b) give the same level as the grey image.
    rgb = np.repeat(grey[..., None], 3, axis=2)
    np.testing.assert_allclose(grey_histograms([rgb]), h)


def _two_clusters(n_big: int, n_small: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Histograms around e0 (n_big) and e1 (n_small) in shuffled order; returns (hist, is_big)."""
    rng = np.random.default_rng(seed)
    big = np.tile([0.9, 0.05, 0.05], (n_big, 1)) + rng.uniform(0, 0.02, (n_big, 3))
    small = np.tile([0.05, 0.9, 0.05], (n_small, 1)) + rng.uniform(0, 0.02, (n_small, 3))
    hist = np.concatenate([big, small])
    is_big = np.r_[np.ones(n_big, bool), np.zeros(n_small, bool)]
    perm = rng.permutation(len(hist))
    return hist[perm], is_big[perm]


def test_split_by_histogram_clusters_and_mix() -> None:
    hist, is_big = _two_clusters(7, 5)
    r = split_by_histogram(hist, seed=3)
    big, small = np.flatnonzero(is_big), np.flatnonzero(~is_big)
    np.testing.assert_array_equal(r.a, big)  # A = the larger cluster
    np.testing.assert_array_equal(r.b, small)
    np.testing.assert_array_equal(r.cluster, (~is_big).astype(int))

    m = split_by_histogram(hist, seed=3, mix=40)
    assert len(m.extra_a) == round(0.4 * 5) and set(m.extra_a) <= set(small)
    assert len(m.extra_b) == round(0.4 * 7) and set(m.extra_b) <= set(big)
    np.testing.assert_array_equal(m.a, np.union1d(big, m.extra_a))
    np.testing.assert_array_equal(m.b, np.union1d(small, m.extra_b))
    # Same seed -> same split; a smaller mix draws a subset of a larger one.
    again = split_by_histogram(hist, seed=3, mix=40)
    np.testing.assert_array_equal(again.a, m.a)
    np.testing.assert_array_equal(again.b, m.b)
    full = split_by_histogram(hist, seed=3, mix=100)
    assert set(m.extra_a) <= set(full.extra_a) and set(full.extra_a) == set(small)


def test_split_by_histogram_errors() -> None:
    hist, _ = _two_clusters(3, 3)
    with pytest.raises(ConfigError, match="--mix"):
        split_by_histogram(hist, seed=0, mix=150)
    with pytest.raises(DataError, match="identical"):
        split_by_histogram(np.ones((4, 3)), seed=0)


def test_split_by_ratio_known_halves() -> None:
    # 10 histograms exactly at e0, 4 "mid" ones and 6 at e1. K-means puts the mids with e0
    # (SSE 0.91 vs 1.73 the other way), but the ratio ranking puts exactly the ten e0 ones in
    # the first half (ratio 0.11 vs 0.48 vs inf), so cluster I = the e0 group.
    pts = np.array([[1.0, 0.0]] * 10 + [[0.6, 0.4]] * 4 + [[0.0, 1.0]] * 6)
    perm = np.random.default_rng(1).permutation(20)
    hist = pts[perm]
    group_one = np.flatnonzero(perm < 10)
    group_two = np.flatnonzero(perm >= 10)
    r = split_by_ratio(hist, seed=0)
    np.testing.assert_array_equal(np.flatnonzero(r.cluster == 0), group_one)
    # 10% of the other cluster: 1 of 10 each way.
    assert len(r.extra_a) == 1 and set(r.extra_a) <= set(group_two)
    assert len(r.extra_b) == 1 and set(r.extra_b) <= set(group_one)
    np.testing.assert_array_equal(r.a, np.union1d(group_one, r.extra_a))
    np.testing.assert_array_equal(r.b, np.union1d(group_two, r.extra_b))
    # --mix 30 adds 3 more each way, keeping the 10% picks.
    m = split_by_ratio(hist, seed=0, mix=30)
    assert len(m.extra_a) == 4 and set(r.extra_a) <= set(m.extra_a) <= set(group_two)
    assert len(m.extra_b) == 4 and set(r.extra_b) <= set(m.extra_b) <= set(group_one)
    z = split_by_ratio(hist, seed=0, other_fraction=0.0)
    np.testing.assert_array_equal(z.a, group_one)
    np.testing.assert_array_equal(z.b, group_two)
    with pytest.raises(ConfigError, match="--mix"):
        split_by_ratio(hist, seed=0, mix=95)


def _files(folder: Path, names: list[str]) -> list[Path]:
    out = []
    for i, n in enumerate(names):
        p = folder / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(bytes([i]) * 4)
        out.append(p)
    return out


def test_write_split_links_copies_manifest(tmp_path: Path) -> None:
    fa = _files(tmp_path / "src", ["x/1.png", "y/1.png"])
    fb = _files(tmp_path / "src", ["b.png"])
    out = tmp_path / "out"
    write_split(fa, fb, out, manifest_extra={"mode": "labels", "seed": 0, "mix": 0.0})
    assert (out / "trainA" / "1.png").is_symlink()
    assert (out / "trainA" / "1__1.png").resolve() == fa[1].resolve()
    man = json.loads((out / "manifest.json").read_text())
    assert man["counts"] == {"trainA": 2, "trainB": 1} and man["mode"] == "labels"
    assert [e["source"] for e in man["trainA"]] == [str(f.resolve()) for f in fa]

    out2 = tmp_path / "out2"
    write_split(fa, fb, out2, link=False, manifest_extra={})
    assert not (out2 / "trainB" / "b.png").is_symlink()
    assert (out2 / "trainB" / "b.png").read_bytes() == fb[0].read_bytes()

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="busy.*not an empty folder"):
        write_split(fa, fb, busy, manifest_extra={})
    assert (busy / "keep.txt").read_text() == "mine" and not (busy / "trainA").exists()


# ------------------------------------------------------------------ split_folders


def _label_folders(root: Path) -> tuple[Path, Path, Path]:
    """labels/ (class ids, 4 maps of mostly class 0 and 2 of class 1), photos/ (.jpg) and maps/ (.png)."""
    labels, photos, maps = root / "labels", root / "photos", root / "maps"
    for folder in (labels, photos, maps):
        folder.mkdir(parents=True)
    for i in range(6):
        lab = np.zeros((4, 4), np.uint8) if i < 4 else np.ones((4, 4), np.uint8)
        lab[0, 0] = i % 2  # small differences inside each cluster
        Image.fromarray(lab).save(labels / f"{i}.png")
        Image.new("RGB", (4, 4), (i, i, i)).save(photos / f"{i}.jpg")
        Image.new("RGB", (4, 4), (0, i, 0)).save(maps / f"{i}.png")
    return labels, photos, maps


def test_split_folders_labels_mode(tmp_path: Path) -> None:
    labels, photos, maps = _label_folders(tmp_path)
    out = tmp_path / "split"
    result = split_folders(out, images_a=maps, images_b=photos, labels=labels, classes=2, seed=1)
    np.testing.assert_array_equal(result.a, [0, 1, 2, 3])  # the larger cluster: the four class-0 maps
    np.testing.assert_array_equal(result.b, [4, 5])
    assert sorted(p.name for p in (out / "trainA").iterdir()) == ["0.png", "1.png", "2.png", "3.png"]
    assert sorted(p.name for p in (out / "trainB").iterdir()) == ["4.jpg", "5.jpg"]
    assert (out / "trainA" / "0.png").resolve() == (maps / "0.png").resolve()  # images_a files, symlinked
    assert (out / "trainB" / "4.jpg").is_symlink()
    man = json.loads((out / "manifest.json").read_text())
    assert {k: man[k] for k in ("mode", "seed", "mix", "histogram_source", "cluster_sizes", "counts")} == {
        "mode": "labels", "seed": 1, "mix": 0.0, "histogram_source": str(labels), "cluster_sizes": [4, 2],
        "counts": {"trainA": 4, "trainB": 2}}
    assert "other_fraction" not in man
    assert [e["source"] for e in man["trainB"]] == [str((photos / f"{i}.jpg").resolve()) for i in (4, 5)]
    # srunit never writes into a folder that holds files.
    with pytest.raises(DataError, match="not an empty folder"):
        split_folders(out, images_a=maps, images_b=photos, labels=labels, classes=2)


def test_split_folders_maps_mode_copies_and_records_the_fraction(tmp_path: Path) -> None:
    maps, photos = tmp_path / "map", tmp_path / "photo"
    for i in range(8):
        arr = np.full((4, 4, 3), 20 if i < 4 else 230, np.uint8)  # dark vs bright maps: two clear clusters
        arr[0, 0] = i  # keep every histogram distinct
        (maps / "s").mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(maps / "s" / f"{i}.png")
        (photos / "s").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4), (100, 100, 100)).save(photos / "s" / f"{i}.png")
    out = tmp_path / "out"
    result = split_folders(out, images_a=maps, images_b=photos, mode="maps", other_fraction=0.25, link=False)
    man = json.loads((out / "manifest.json").read_text())
    assert man["mode"] == "maps" and man["other_fraction"] == 0.25 and man["histogram_source"] == str(maps)
    # 4 + 4 images: each domain = its half + round(25% of 4) = 1 image of the other half.
    assert man["counts"] == {"trainA": 5, "trainB": 5} and len(result.extra_a) == len(result.extra_b) == 1
    assert {Path(e["source"]).parent.parent.name for e in man["trainA"]} == {"map"}
    assert not any(p.is_symlink() for p in (out / "trainA").iterdir())


def test_split_folders_option_errors(tmp_path: Path) -> None:
    labels, photos, maps = _label_folders(tmp_path)
    with pytest.raises(ConfigError, match=re.escape("--mode: invalid value 'grey'; allowed: labels, maps")):
        split_folders(tmp_path / "o1", images_a=maps, images_b=photos, mode="grey")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="--labels is required with --mode labels"):
        split_folders(tmp_path / "o2", images_a=maps, images_b=photos, classes=2)
    with pytest.raises(ConfigError, match="--classes is required with --mode labels"):
        split_folders(tmp_path / "o3", images_a=maps, images_b=photos, labels=labels)
    with pytest.raises(ConfigError, match=re.escape("--other-fraction 0.2 applies to --mode maps only")):
        split_folders(tmp_path / "o3", images_a=maps, images_b=photos, labels=labels, classes=2, other_fraction=0.2)
    for seed, message in ((-1, "--seed must be an integer >= 0, got -1"), (2**32, "--seed must be below 2**32")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            split_folders(tmp_path / "o3", images_a=maps, images_b=photos, labels=labels, classes=2, seed=seed)
    (photos / "5.jpg").unlink()
    with pytest.raises(DataError, match=re.escape("1 --labels file(s) have no --images-b partner with the same name "
                                                  f"stem in {photos}: {labels / '5.png'}")):
        split_folders(tmp_path / "o4", images_a=maps, images_b=photos, labels=labels, classes=2)
    with pytest.raises(DataError, match=r"--labels folder .* does not exist.*pass --labels DIR"):
        split_folders(tmp_path / "o5", images_a=maps, images_b=photos, labels=tmp_path / "nope", classes=2)
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 6))  # nothing written


def test_split_folders_reads_cityscapes_colour_labels(tmp_path: Path) -> None:
    labels, photos = tmp_path / "colour", tmp_path / "photos"
    labels.mkdir()
    photos.mkdir()
    road, sky = CITYSCAPES_TRAIN_COLOURS[0], CITYSCAPES_TRAIN_COLOURS[10]
    for i in range(5):
        arr = np.tile(np.array(road if i < 3 else sky, np.uint8), (4, 4, 1))
        arr[0, 0] = (1, 2, 3) if i % 2 else arr[0, 0]  # an unknown colour: ignored, not counted
        arr[1, 1] = CITYSCAPES_TRAIN_COLOURS[i]
        Image.fromarray(arr).save(labels / f"{i}.png")
        Image.new("RGB", (4, 4)).save(photos / f"{i}.png")
    out = tmp_path / "out"
    result = split_folders(out, images_a=labels, images_b=photos, labels=labels, palette="cityscapes")
    np.testing.assert_array_equal(result.a, [0, 1, 2])  # 19 classes by default with the cityscapes palette
    np.testing.assert_array_equal(result.b, [3, 4])
