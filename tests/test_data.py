"""Tests for srunit.data: scanning, decoding, preprocessing, the unpaired dataset, the sampler
and the synthetic dataset. Tiny images only, so the whole file runs in a few seconds."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from srunit.data import (
    CLASS_NAMES,
    IMAGE_EXTENSIONS,
    PREPROCESS_MODES,
    EpochSampler,
    Preprocess,
    UnalignedDataset,
    class_fractions,
    colors_to_labels,
    dataset_layout,
    load_rgb,
    make_grid,
    make_synthetic_dataset,
    pil_to_tensor,
    render_labels,
    render_photo,
    sample_layout,
    save_image_grid,
    scan_images,
    tensor_to_pil,
)
from srunit.data import transforms as transforms_mod
from srunit.data.synthetic import SKY, VEGETATION
from srunit.errors import DataError


def _rand_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _write(path: Path, arr: np.ndarray | None = None, size: tuple[int, int] = (30, 40),
           seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_rand_rgb(*size, seed=seed) if arr is None else arr).save(path)
    return path


def _mode(path: Path) -> str:
    with Image.open(path) as img:
        return img.mode


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


# --------------------------------------------------------------------------- scanning


def test_scan_missing_folder_names_path_and_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "trainA"
    with pytest.raises(DataError) as e:
        scan_images(missing, "domain A (data.root/trainA)")
    msg = str(e.value)
    assert str(missing) in msg and "does not exist" in msg and "--data.root" in msg
    assert "domain A" in msg


def test_scan_file_instead_of_folder(tmp_path: Path) -> None:
    f = _write(tmp_path / "a.png")
    with pytest.raises(DataError, match="not a folder") as e:
        scan_images(f, "domain A")
    assert str(f) in str(e.value)


def test_scan_empty_and_non_image_folders(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as e:
        scan_images(empty, "domain B")
    assert str(empty) in str(e.value) and ".png" in str(e.value) and ".jpg" in str(e.value)

    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("hello")
    (junk / "labels.csv").write_text("a,b")
    (junk / ".hidden.png").write_bytes(b"x")
    with pytest.raises(DataError, match="contains no image files") as e:
        scan_images(junk, "domain B")
    assert str(junk) in str(e.value)


def test_scan_recursive_sorted_case_insensitive(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    expected = [
        _write(root / "a.PNG"),
        _write(root / "b.jpeg"),
        _write(root / "sub" / "c.Jpg"),
        _write(root / "sub" / "deeper" / "d.bmp"),
        _write(root / "z.TIF"),
    ]
    (root / "readme.txt").write_text("x")
    _write(root / ".hidden.png")
    _write(root / ".cache" / "e.png")
    assert scan_images(root, "domain A") == expected
    assert {".png", ".jpg", ".jpeg", ".webp", ".tiff"} <= IMAGE_EXTENSIONS


# --------------------------------------------------------------------------- decoding


def test_load_rgb_grayscale_and_bilevel(tmp_path: Path) -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    p = tmp_path / "g.png"
    Image.fromarray(gray).save(p)
    img = load_rgb(p)
    assert img.mode == "RGB" and img.size == (4, 3)
    assert np.array_equal(np.asarray(img), np.repeat(gray[..., None], 3, axis=2))

    p1 = tmp_path / "b.png"
    Image.fromarray(gray > 100).save(p1)
    assert _mode(p1) == "1"
    out = np.asarray(load_rgb(p1))
    assert set(np.unique(out)) <= {0, 255}


def test_load_rgb_alpha_composited_on_black(tmp_path: Path) -> None:
    rgba = np.array([[[200, 100, 50, 255], [200, 100, 50, 128], [200, 100, 50, 0]]],
                    dtype=np.uint8)
    p = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(p)
    out = np.asarray(load_rgb(p))
    assert out[0, 0].tolist() == [200, 100, 50]
    assert out[0, 1].tolist() == [100, 50, 25]
    assert out[0, 2].tolist() == [0, 0, 0]

    p_la = tmp_path / "la.png"
    Image.fromarray(np.array([[[200, 255], [200, 0]]], dtype=np.uint8), mode="LA").save(p_la)
    assert np.asarray(load_rgb(p_la))[0].tolist() == [[200] * 3, [0] * 3]


def test_load_rgb_palette_with_and_without_transparency(tmp_path: Path) -> None:
    pal = Image.new("P", (2, 1))
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putdata([0, 1])
    p = tmp_path / "p.png"
    pal.save(p)
    assert np.asarray(load_rgb(p))[0].tolist() == [[255, 0, 0], [0, 255, 0]]

    pt = tmp_path / "pt.png"
    pal.save(pt, transparency=0)
    with Image.open(pt) as reread:
        assert reread.info.get("transparency") == 0
    assert np.asarray(load_rgb(pt))[0].tolist() == [[0, 0, 0], [0, 255, 0]]

    gif = tmp_path / "p.gif"
    pal.save(gif)
    assert load_rgb(gif).mode == "RGB"


def test_load_rgb_16bit_scaled_not_clipped(tmp_path: Path) -> None:
    a = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(a).save(p)
    assert _mode(p).startswith("I")
    out = np.asarray(load_rgb(p))[0, :, 0]
    assert out.tolist() == [0, 1, 128, 255]

    # Big-endian 16-bit and 32-bit "I" (how Pillow exposes 16-bit PGM) scale the same way.
    big = Image.frombytes("I;16B", (4, 1), a.astype(">u2").tobytes())
    p_tif = tmp_path / "g16b.tif"
    big.save(p_tif)
    assert np.asarray(load_rgb(p_tif))[0, :, 0].tolist() == [0, 1, 128, 255]
    p_pgm = tmp_path / "g16.pgm"
    Image.fromarray(a).save(p_pgm)
    assert np.asarray(load_rgb(p_pgm))[0, :, 1].tolist() == [0, 1, 128, 255]

    f = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    p_f = tmp_path / "f.tif"
    f.save(p_f)
    assert np.asarray(load_rgb(p_f))[0, :, 2].tolist() == [0, 128, 255]


def test_load_rgb_cmyk(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (2, 2), (0, 0, 0, 0))
    p = tmp_path / "c.tif"
    cmyk.save(p)
    assert _mode(p) == "CMYK"
    out = load_rgb(p)
    assert out.mode == "RGB" and np.all(np.asarray(out) == 255)


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_truncated_image_raises_even_if_pil_flag_set(tmp_path: Path, fmt: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    p = _truncate(_write(tmp_path / f"t.{fmt}", size=(64, 64)))
    with pytest.raises(DataError) as e:
        load_rgb(p)
    msg = str(e.value)
    assert str(p) in msg and "truncated" in msg and "--data.skip_bad_images true" in msg

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(DataError):
        load_rgb(p)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_non_image_file_raises(tmp_path: Path) -> None:
    p = tmp_path / "fake.png"
    p.write_text("this is not an image")
    with pytest.raises(DataError) as e:
        load_rgb(p)
    assert str(p) in str(e.value) and "skip_bad_images" in str(e.value)
    with pytest.raises(DataError, match="does not exist"):
        load_rgb(tmp_path / "missing.png")


# --------------------------------------------------------------------------- tensors, grids


def test_tensor_round_trip_and_range() -> None:
    arr = _rand_rgb(5, 7)
    arr[0, 0] = 0
    arr[0, 1] = 255
    x = pil_to_tensor(Image.fromarray(arr))
    assert x.shape == (3, 5, 7) and x.dtype == torch.float32
    assert x.min() == -1.0 and x.max() == 1.0
    assert np.array_equal(np.asarray(tensor_to_pil(x)), arr)
    assert np.array_equal(np.asarray(tensor_to_pil(x.to(torch.float16))), arr)
    clamped = np.asarray(tensor_to_pil(torch.full((3, 2, 2), 3.0)))
    assert np.all(clamped == 255)
    assert np.asarray(tensor_to_pil(torch.zeros(3, 1, 1)))[0, 0, 0] == 128


def test_make_grid_and_save_image_grid(tmp_path: Path) -> None:
    imgs = -torch.ones(5, 3, 4, 6)
    g = make_grid(imgs, ncol=3)
    assert g.shape == (3, 2 * 4 + 2, 3 * 6 + 2 * 2)
    assert torch.all(g[:, 4:6, :] == 1.0)  # white padding row
    assert torch.all(g[:, 6:, 16:] == 1.0)  # empty sixth cell

    out = tmp_path / "samples" / "step_10.png"
    rows = [[torch.zeros(3, 8, 8), torch.ones(3, 8, 8), -torch.ones(3, 6, 10)]] * 2
    save_image_grid(rows, out)
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (3 * 10 + 4, 2 * 8 + 2)
    assert [p.name for p in out.parent.iterdir()] == ["step_10.png"]  # no temp file left


# --------------------------------------------------------------------------- preprocessing


def test_preprocess_validation() -> None:
    with pytest.raises(DataError, match="resize_and_crop") as e:
        Preprocess(mode="zoom")
    assert "'zoom'" in str(e.value)
    with pytest.raises(DataError, match="data.crop_size.*data.load_size"):
        Preprocess(mode="resize_and_crop", load_size=100, crop_size=128)
    with pytest.raises(DataError, match="data.load_size"):
        Preprocess(load_size=0)
    Preprocess(mode="crop", load_size=100, crop_size=128)  # load_size unused by "crop"
    assert set(PREPROCESS_MODES) == {"resize_and_crop", "crop", "scale_width",
                                     "scale_width_and_crop", "none"}


@pytest.mark.parametrize(("mode", "shape"), [
    ("resize_and_crop", (3, 32, 32)),
    ("crop", (3, 32, 32)),
    ("scale_width", (3, 32, 36)),          # width 36, height max(27, crop 32)
    ("scale_width_and_crop", (3, 32, 32)),
    ("none", (3, 32, 40)),                 # 30 -> nearest multiple of 4
])
def test_preprocess_modes_shapes(mode: str, shape: tuple[int, int, int]) -> None:
    img = Image.fromarray(_rand_rgb(30, 40))
    pre = Preprocess(mode=mode, load_size=36, crop_size=32)
    x = pre(img, np.random.default_rng(0))
    assert x.shape == shape and x.dtype == torch.float32
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_small_image_scaled_up_and_warned_once(caplog: pytest.LogCaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transforms_mod, "_warned_small", False)
    pre = Preprocess(mode="crop", crop_size=32, flip=False)
    small = Image.fromarray(_rand_rgb(10, 20))
    with caplog.at_level(logging.WARNING, logger="srunit.data"):
        a = pre(small, np.random.default_rng(0), name="tiny.png")
        b = pre(small, np.random.default_rng(1), name="other.png")
    assert a.shape == b.shape == (3, 32, 32)
    warnings = [r for r in caplog.records if r.name == "srunit.data"]
    assert len(warnings) == 1
    assert "tiny.png" in warnings[0].getMessage() and "crop_size" in warnings[0].getMessage()


def test_flip_and_crop_are_pure_functions_of_rng() -> None:
    img = Image.fromarray(_rand_rgb(12, 16))
    base = Preprocess(mode="none", flip=False)(img, np.random.default_rng(0))
    pre = Preprocess(mode="none", flip=True)
    seen = set()
    for seed in range(16):
        x = pre(img, np.random.default_rng(seed))
        assert torch.equal(x, pre(img, np.random.default_rng(seed)))
        if torch.equal(x, base):
            seen.add("plain")
        else:
            assert torch.equal(x, base.flip(-1))
            seen.add("flipped")
    assert seen == {"plain", "flipped"}

    crop = Preprocess(mode="crop", crop_size=8, flip=False)
    outs = {crop(img, np.random.default_rng(s)).numpy().tobytes() for s in range(8)}
    assert len(outs) > 1


# --------------------------------------------------------------------------- dataset


@pytest.fixture
def two_domains(tmp_path: Path) -> tuple[Path, Path]:
    for i in range(3):
        _write(tmp_path / "trainA" / f"a{i}.png", size=(40, 40), seed=i)
    for i in range(5):
        _write(tmp_path / "trainB" / f"b{i}.jpg", size=(40, 48), seed=10 + i)
    return tmp_path / "trainA", tmp_path / "trainB"


def _same(d1: dict, d2: dict) -> bool:
    return (torch.equal(d1["A"], d2["A"]) and torch.equal(d1["B"], d2["B"])
            and d1["A_path"] == d2["A_path"] and d1["B_path"] == d2["B_path"])


def test_dataset_items_deterministic(two_domains: tuple[Path, Path]) -> None:
    dir_a, dir_b = two_domains
    pre = Preprocess(load_size=36, crop_size=32)
    ds = UnalignedDataset(dir_a, dir_b, pre, seed=3)
    assert len(ds) == 5
    item = ds[4]
    assert set(item) == {"A", "B", "A_path", "B_path"}
    assert item["A"].shape == item["B"].shape == (3, 32, 32)
    assert item["A_path"] == str(ds.files_a[4 % 3])

    first = [ds[i] for i in range(5)]
    again = UnalignedDataset(dir_a, dir_b, pre, seed=3)
    for i in reversed(range(5)):  # order of access must not matter
        assert _same(first[i], again[i])

    ds.set_epoch(1)
    assert any(not _same(first[i], ds[i]) for i in range(5))
    ds.set_epoch(0)
    assert _same(first[2], ds[2])

    other_seed = UnalignedDataset(dir_a, dir_b, pre, seed=4)
    assert any(not _same(first[i], other_seed[i]) for i in range(5))

    serial = UnalignedDataset(dir_a, dir_b, pre, serial_batches=True)
    assert [serial[i]["B_path"] for i in range(5)] == [str(p) for p in serial.files_b]
    with pytest.raises(IndexError):
        ds[5]


def test_dataset_same_with_worker_processes(two_domains: tuple[Path, Path]) -> None:
    ds = UnalignedDataset(*two_domains, Preprocess(load_size=36, crop_size=32), seed=1)
    sampler = EpochSampler(len(ds), seed=1, epoch=0)

    def batches(workers: int) -> list[torch.Tensor]:
        loader = torch.utils.data.DataLoader(ds, batch_size=2, sampler=sampler,
                                             num_workers=workers)
        return [torch.cat([b["A"], b["B"]]) for b in loader]

    serial, parallel = batches(0), batches(2)
    assert len(serial) == 3
    assert all(torch.equal(s, p) for s, p in zip(serial, parallel))


def test_dataset_from_root_and_missing_domain(tmp_path: Path,
                                              two_domains: tuple[Path, Path]) -> None:
    ds = UnalignedDataset.from_root(tmp_path, Preprocess(load_size=36, crop_size=32))
    assert len(ds.files_a) == 3 and len(ds.files_b) == 5
    with pytest.raises(DataError, match="does not exist") as e:
        UnalignedDataset.from_root(tmp_path / "trainA", Preprocess())
    assert "data.root" in str(e.value)


def test_bad_images_fail_or_are_skipped(two_domains: tuple[Path, Path],
                                        caplog: pytest.LogCaptureFixture) -> None:
    dir_a, dir_b = two_domains
    pre = Preprocess(load_size=36, crop_size=32)
    truncated = _truncate(_write(dir_a / "a3.png", size=(40, 40), seed=99))

    ds = UnalignedDataset(dir_a, dir_b, pre)  # header check passes for a truncated file
    idx = ds.files_a.index(truncated)
    with pytest.raises(DataError) as e:
        ds[idx]
    assert str(truncated) in str(e.value) and "skip_bad_images" in str(e.value)

    fake = dir_b / "fake.png"
    fake.write_bytes(b"\x00" * 64)
    with pytest.raises(DataError) as e:
        UnalignedDataset(dir_a, dir_b, pre)  # a non-image fails at start-up
    assert str(fake) in str(e.value) and "skip_bad_images" in str(e.value)

    with caplog.at_level(logging.WARNING, logger="srunit.data"):
        ds = UnalignedDataset(dir_a, dir_b, pre, skip_bad_images=True)
    assert ds.num_skipped == {"A": 1, "B": 1}
    assert truncated not in ds.files_a and fake not in ds.files_b
    assert len(ds) == 5 and all(ds[i]["A"].shape == (3, 32, 32) for i in range(len(ds)))
    assert sum("skipped 1 of" in r.getMessage() for r in caplog.records) == 2

    for p in dir_b.iterdir():
        p.write_bytes(b"broken")
    with pytest.raises(DataError, match="all 6 image files are unreadable"):
        UnalignedDataset(dir_a, dir_b, pre, skip_bad_images=True)


# --------------------------------------------------------------------------- sampler


def test_epoch_sampler() -> None:
    full = list(EpochSampler(10, seed=0, epoch=0))
    assert sorted(full) == list(range(10)) and full != list(range(10))
    assert full == list(EpochSampler(10, seed=0, epoch=0))
    assert full != list(EpochSampler(10, seed=0, epoch=1))
    assert full != list(EpochSampler(10, seed=1, epoch=0))
    resumed = EpochSampler(10, seed=0, epoch=0, start=4)
    assert list(resumed) == full[4:] and len(resumed) == 6
    assert list(EpochSampler(5, seed=0, epoch=3, shuffle=False)) == [0, 1, 2, 3, 4]
    assert list(EpochSampler(5, seed=0, epoch=0, start=5)) == []
    with pytest.raises(DataError, match="start"):
        EpochSampler(5, seed=0, epoch=0, start=6)


# --------------------------------------------------------------------------- synthetic data


def test_synthetic_dataset_deterministic_and_paired(tmp_path: Path) -> None:
    kw = dict(num_train=4, num_test=3, size=48, seed=7)
    r1 = make_synthetic_dataset(tmp_path / "one", **kw)
    r2 = make_synthetic_dataset(tmp_path / "two", **kw)
    for split, n in [("trainA", 4), ("trainB", 4), ("testA", 3), ("testB", 3)]:
        names = sorted(p.name for p in (r1 / split).iterdir())
        assert names == [f"{i:04d}.png" for i in range(n)]
        for name in names:
            assert (r1 / split / name).read_bytes() == (r2 / split / name).read_bytes()

    # testB/x.png is the photo of exactly the layout shown in testA/x.png.
    for i in range(3):
        labels, render_rng = dataset_layout("test", i, size=48, seed=7)
        shown = _pixels(r1 / "testA" / f"{i:04d}.png")
        assert np.array_equal(colors_to_labels(shown), labels)
        photo = _pixels(r1 / "testB" / f"{i:04d}.png")
        assert np.array_equal(photo, render_photo(labels, render_rng))
    assert (r1 / "trainA" / "0000.png").read_bytes() != (r1 / "testA" / "0000.png").read_bytes()

    make_synthetic_dataset(r1, num_train=2, num_test=1, size=48, seed=7)  # stale files removed
    assert len(list((r1 / "trainB").iterdir())) == 2
    ds = UnalignedDataset.from_root(r1, Preprocess(mode="crop", crop_size=32))
    assert ds[1]["B"].shape == (3, 32, 32)
    with pytest.raises(DataError, match="num_train"):
        make_synthetic_dataset(tmp_path / "bad", num_train=0)


def test_synthetic_layouts_classes_and_statistics() -> None:
    rng = np.random.default_rng(0)
    a = [sample_layout(rng, 48, 0.15) for _ in range(30)]
    b = [dataset_layout("trainB", i, size=48)[0] for i in range(30)]
    present = set(np.unique(np.concatenate([x.ravel() for x in a[:6]])).tolist())
    assert len(present) >= 6
    assert {0, 1, 2, 3, 4, 5} <= set(np.unique(np.concatenate([x.ravel() for x in a])))
    assert a[0].dtype == np.uint8 and a[0].shape == (48, 48) and a[0].max() < len(CLASS_NAMES)

    frac_a = np.mean([class_fractions(x) for x in a], axis=0)
    frac_b = np.mean([class_fractions(x) for x in b], axis=0)
    assert frac_b[VEGETATION] > frac_a[VEGETATION] + 0.1
    assert frac_b[SKY] < frac_a[SKY]

    colours = render_labels(a[0])
    assert colours.shape == (48, 48, 3) and colours.dtype == np.uint8
    assert np.array_equal(colors_to_labels(colours), a[0])
    photo = render_photo(a[0], np.random.default_rng(1))
    assert photo.shape == (48, 48, 3) and photo.dtype == np.uint8
    assert np.array_equal(photo, render_photo(a[0], np.random.default_rng(1)))
