"""Data construction of paper App. C/D: histograms, K-means splits, writing, dataset conversion."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srunit.cli import data as data_cli
from srunit.data.convert import (
    cityscapes_colours_to_train_ids,
    prepare_cityscapes,
    split_side_by_side,
)
from srunit.data.split import (
    class_histograms,
    grey_histograms,
    split_by_histogram,
    split_by_ratio,
    write_split,
)
from srunit.errors import ConfigError, DataError

# ------------------------------------------------------------------ histograms


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


# ------------------------------------------------------------------ splits


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


# ------------------------------------------------------------------ writing


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


# ------------------------------------------------------------------ conversion


def test_split_side_by_side(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "train").mkdir(parents=True)
    arr = np.zeros((2, 4, 3), np.uint8)
    arr[:, :2] = (255, 0, 0)
    arr[:, 2:] = (0, 0, 255)
    Image.fromarray(arr).save(src / "train" / "1.jpg", quality=100)
    Image.fromarray(arr).save(src / "2.png")
    assert split_side_by_side(src, tmp_path / "out") == 2
    a = np.asarray(Image.open(tmp_path / "out" / "A" / "2.png"))
    b = np.asarray(Image.open(tmp_path / "out" / "B" / "2.png"))
    assert a.shape == (2, 2, 3) and (a == (255, 0, 0)).all() and (b == (0, 0, 255)).all()
    assert (tmp_path / "out" / "B" / "train" / "1.png").is_file()

    Image.new("RGB", (5, 2)).save(src / "odd.png")
    with pytest.raises(DataError, match="odd.png.*5 pixels wide"):
        split_side_by_side(src, tmp_path / "out_odd")
    assert not (tmp_path / "out_odd").exists()  # checked before writing anything
    with pytest.raises(DataError, match="not an empty folder"):
        split_side_by_side(src, tmp_path / "out")


def _cityscapes_tree(root: Path) -> None:
    ids = np.repeat(np.array([7, 26, 0, 33], np.uint8), 4)[None, :].repeat(8, axis=0)  # 4 stripes, 16x8
    colours = np.zeros((8, 16, 3), np.uint8)
    colours[:, :4] = (128, 64, 128)  # road
    colours[:, 4:8] = (0, 0, 142)  # car
    for split, city, seq in (("train", "aachen", 0), ("train", "bremen", 1), ("val", "lindau", 2)):
        stem = f"{city}_{seq:06d}_000019"
        p = root / "leftImg8bit" / split / city
        g = root / "gtFine" / split / city
        p.mkdir(parents=True, exist_ok=True)
        g.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 16, 3), 40 * (seq + 1), np.uint8)).save(p / f"{stem}_leftImg8bit.png")
        Image.fromarray(colours).save(g / f"{stem}_gtFine_color.png")
        Image.fromarray(ids).save(g / f"{stem}_gtFine_labelIds.png")


def test_prepare_cityscapes(tmp_path: Path) -> None:
    root, out = tmp_path / "cs", tmp_path / "out"
    _cityscapes_tree(root)
    assert prepare_cityscapes(root, out, size=(8, 4)) == {"train": 2, "val": 1}
    assert sorted(p.name for p in (out / "trainA").iterdir()) == ["aachen_000000_000019.png", "bremen_000001_000019.png"]
    photo = Image.open(out / "valB" / "lindau_000002_000019.png")
    assert photo.size == (8, 4) and photo.mode == "RGB"
    train_ids = np.asarray(Image.open(out / "train_labels" / "aachen_000000_000019.png"))
    assert train_ids.shape == (4, 8)
    np.testing.assert_array_equal(train_ids[0], [0, 0, 13, 13, 255, 255, 18, 18])  # road, car, unlabeled, bicycle
    colour = np.asarray(Image.open(out / "trainA" / "aachen_000000_000019.png"))
    assert (colour[:, :2] == (128, 64, 128)).all() and (colour[:, 2:4] == (0, 0, 142)).all()
    np.testing.assert_array_equal(cityscapes_colours_to_train_ids(colour)[0], [0, 0, 13, 13, 255, 255, 255, 255])


def test_prepare_cityscapes_errors(tmp_path: Path) -> None:
    root = tmp_path / "cs"
    _cityscapes_tree(root)
    (root / "gtFine" / "train" / "bremen" / "bremen_000001_000019_gtFine_color.png").unlink()
    with pytest.raises(DataError, match="bremen_000001_000019_leftImg8bit.png has no label file"):
        prepare_cityscapes(root, tmp_path / "out", size=(8, 4))
    assert not (tmp_path / "out").exists()
    (root / "leftImg8bit" / "train" / "bremen" / "bremen_000001_000019_leftImg8bit.png").unlink()
    with pytest.raises(DataError, match="bremen_000001_000019_gtFine_labelIds.png has no photo"):
        prepare_cityscapes(root, tmp_path / "out", size=(8, 4))
    with pytest.raises(DataError, match="nowhere/gtFine does not exist"):
        (tmp_path / "nowhere" / "leftImg8bit").mkdir(parents=True)
        prepare_cityscapes(tmp_path / "nowhere", tmp_path / "out")


# ------------------------------------------------------------------ CLI


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="srunit")
    data_cli.add_parser(parser.add_subparsers(dest="command"))
    return data_cli.run(parser.parse_args(argv), [])


def test_cli_split_labels(tmp_path: Path) -> None:
    labels, photos = tmp_path / "labels", tmp_path / "photos"
    labels.mkdir()
    photos.mkdir()
    for i in range(6):
        lab = np.zeros((4, 4), np.uint8) if i < 4 else np.ones((4, 4), np.uint8)
        lab[0, 0] = i % 2  # small differences inside each cluster
        Image.fromarray(lab).save(labels / f"{i}.png")
        Image.new("RGB", (4, 4), (i, i, i)).save(photos / f"{i}.jpg")
    out = tmp_path / "split"
    assert _cli(["data", "split", "--labels", str(labels), "--classes", "2", "--images-a", str(labels),
                 "--images-b", str(photos), "--out", str(out), "--seed", "1"]) == 0
    assert sorted(p.name for p in (out / "trainA").iterdir()) == ["0.png", "1.png", "2.png", "3.png"]
    assert sorted(p.name for p in (out / "trainB").iterdir()) == ["4.jpg", "5.jpg"]
    assert json.loads((out / "manifest.json").read_text())["cluster_sizes"] == [4, 2]

    (photos / "5.jpg").unlink()
    with pytest.raises(DataError, match="5.png has no partner 5"):
        _cli(["data", "split", "--labels", str(labels), "--classes", "2", "--images-a", str(labels),
              "--images-b", str(photos), "--out", str(tmp_path / "other")])
    with pytest.raises(ConfigError, match="--classes"):
        _cli(["data", "split", "--labels", str(labels), "--images-a", str(labels),
              "--images-b", str(labels), "--out", str(tmp_path / "other")])


def test_cli_maps_then_split_maps(tmp_path: Path) -> None:
    src = tmp_path / "pix2pix"
    src.mkdir()
    for i in range(8):
        arr = np.zeros((4, 8, 3), np.uint8)
        arr[:, :4] = 100  # aerial photo half
        arr[:, 4:] = 20 if i < 4 else 230  # dark vs bright maps: two clear clusters
        arr[0, 4] = i  # keep every histogram distinct
        Image.fromarray(arr).save(src / f"{i}.png")
    assert _cli(["data", "maps", "--input", str(src), "--out", str(tmp_path / "cut")]) == 0
    out = tmp_path / "split"
    assert _cli(["data", "split", "--mode", "maps", "--images-a", str(tmp_path / "cut" / "map"),
                 "--images-b", str(tmp_path / "cut" / "photo"), "--out", str(out), "--copy"]) == 0
    man = json.loads((out / "manifest.json").read_text())
    # 4 + 4 images: each domain = its half (4) + round(10% of 4) = 0 extras.
    assert man["counts"] == {"trainA": 4, "trainB": 4} and man["mode"] == "maps"
    assert {Path(e["source"]).parent.name for e in man["trainA"]} == {"map"}
    assert {Path(e["source"]).parent.name for e in man["trainB"]} == {"photo"}
    assert {e["name"] for e in man["trainA"]}.isdisjoint({e["name"] for e in man["trainB"]})


def test_cli_help_texts(capsys: pytest.CaptureFixture) -> None:
    for argv in (["data", "--help"], ["data", "split", "--help"], ["data", "maps", "--help"],
                 ["data", "cityscapes", "--help"]):
        with pytest.raises(SystemExit) as exc:
            _cli(argv)
        assert exc.value.code == 0
    assert "--other-fraction" in capsys.readouterr().out
