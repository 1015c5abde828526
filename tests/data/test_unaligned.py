"""srunit.data.unaligned: the unpaired two-domain dataset and the resumable epoch sampler."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from srunit.data import EpochSampler, Preprocess, UnalignedDataset, load_rgb
from srunit.errors import ConfigError, DataError
from srunit.options import DataConfig


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


@pytest.fixture
def two_domains(tmp_path: Path, write_image) -> tuple[Path, Path]:
    for i in range(3):
        write_image(tmp_path / "trainA" / f"a{i}.png", size=(40, 40), seed=i)
    for i in range(5):
        write_image(tmp_path / "trainB" / f"b{i}.jpg", size=(40, 48), seed=10 + i)
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


def test_bad_images_fail_or_are_skipped(two_domains: tuple[Path, Path], write_image,
                                        caplog: pytest.LogCaptureFixture) -> None:
    dir_a, dir_b = two_domains
    pre = Preprocess(load_size=36, crop_size=32)
    truncated = _truncate(write_image(dir_a / "a3.png", size=(40, 40), seed=99))

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


@pytest.mark.parametrize(("kwargs", "key"), [({"seed": -1}, "seed"), ({"epoch": 1.5}, "epoch"),
                                             ({"start": -2}, "start"), ({"seed": True}, "seed")])
def test_sampler_arguments_are_config_errors_naming_the_argument(kwargs: dict, key: str) -> None:
    args = {"seed": 0, "epoch": 0, **kwargs}
    with pytest.raises(ConfigError, match=re.escape(f"{key} must be an integer >= 0, got {kwargs[key]!r}")):
        EpochSampler(5, **args)
    with pytest.raises(ConfigError, match=re.escape("length must be an integer >= 0, got -1")):
        EpochSampler(-1, seed=0, epoch=0)


def test_dataset_seed_and_epoch_are_checked(two_domains: tuple[Path, Path]) -> None:
    with pytest.raises(ConfigError, match=re.escape("seed must be an integer >= 0, got -3")):
        UnalignedDataset(*two_domains, Preprocess(load_size=36, crop_size=32), seed=-3)
    ds = UnalignedDataset(*two_domains, Preprocess(load_size=36, crop_size=32))
    with pytest.raises(ConfigError, match=re.escape("epoch must be an integer >= 0, got -1")):
        ds.set_epoch(-1)


def test_dataset_from_config(tmp_path: Path, two_domains: tuple[Path, Path]) -> None:
    dir_a, dir_b = two_domains
    data = DataConfig(root=str(tmp_path), preprocess="crop", load_size=36, crop_size=32, flip=False,
                      serial_batches=True)
    ds = UnalignedDataset.from_config(data, seed=5)
    assert (ds.dir_a, ds.dir_b, ds.seed, ds.serial_batches) == (dir_a, dir_b, 5, True)
    assert ds.preprocess == Preprocess("crop", 36, 32, False)
    assert [ds[i]["B_path"] for i in range(5)] == [str(p) for p in ds.files_b]
    # An explicit folder wins over the root.
    swapped = UnalignedDataset.from_config(DataConfig(root=str(tmp_path), dir_a=str(dir_b), crop_size=32,
                                                      load_size=36), seed=0)
    assert (swapped.dir_a, swapped.dir_b) == (dir_b, dir_b)
    with pytest.raises(DataError, match=re.escape(f"domain B (data.dir_b) folder {tmp_path / 'none'} does not exist")):
        UnalignedDataset.from_config(DataConfig(dir_a=str(dir_a), dir_b=str(tmp_path / "none"), crop_size=32,
                                                load_size=36), seed=0)
    with pytest.raises(ConfigError, match="no training data given"):
        UnalignedDataset.from_config(DataConfig(), seed=0)


def test_synthscapes_folder_is_a_training_set(tiny_data: Path) -> None:
    ds = UnalignedDataset.from_root(tiny_data, Preprocess(mode="crop", crop_size=32))
    assert len(ds.files_a) >= 2 and len(ds.files_b) >= 2
    assert ds[1]["A"].shape == ds[1]["B"].shape == (3, 32, 32)


def test_images_above_the_pixel_limit_are_refused_before_decoding(two_domains: tuple[Path, Path], write_image,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    dir_a, dir_b = two_domains
    pre = Preprocess(load_size=36, crop_size=32)
    big = write_image(dir_a / "big.png", size=(64, 80))  # 5120 pixels
    with pytest.raises(DataError, match=re.escape(f"image file {big} is 80 x 64 = 5,120 pixels, more than the limit "
                                                  "of 5,000; shrink it, or pass data.max_pixels 5120 to allow it")):
        UnalignedDataset(dir_a, dir_b, pre, max_pixels=5000)
    ds = UnalignedDataset(dir_a, dir_b, pre, max_pixels=5000, skip_bad_images=True)
    assert big not in ds.files_a and ds.num_skipped["A"] == 1
    # The limit is checked from the header: no pixel of the large image is decoded.
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self.size))
    with pytest.raises(DataError, match="more than the limit"):
        load_rgb(big, max_pixels=5000)
    assert decoded == []
    with pytest.raises(ConfigError, match="data.max_pixels must be an integer from 1 to 4,294,967,296"):
        DataConfig(max_pixels=0)


def test_an_image_the_preprocessing_would_resize_past_the_pixel_limit_is_refused_or_skipped(
        two_domains: tuple[Path, Path], write_image, caplog: pytest.LogCaptureFixture) -> None:
    dir_a, dir_b = two_domains
    strip = write_image(dir_a / "strip.png", size=(400, 1))  # 400 pixels as stored, 1 wide
    # scale_width: width 36, height 36 * 400 = 14,400 (multiples of 4): 518,400 pixels.
    pre = Preprocess("scale_width", load_size=36, crop_size=32)
    assert pre.planned_size((1, 400)) == (36, 14400)
    with pytest.raises(DataError, match=re.escape(
            f"image file {strip} is 1 x 400; data.preprocess scale_width resizes it to 36 x 14400 = 518,400 pixels, "
            "more than data.max_pixels 10,000; crop the image to a less extreme shape, use data.preprocess "
            "resize_and_crop, or pass data.max_pixels 518400 to allow it")):
        UnalignedDataset(dir_a, dir_b, pre, max_pixels=10_000)
    ds = UnalignedDataset(dir_a, dir_b, pre, max_pixels=10_000, skip_bad_images=True)
    assert strip not in ds.files_a and ds.num_skipped["A"] == 1
    # crop: scaled up to fit the 32 px crop, keeping its shape: 32 x 12,800.
    assert Preprocess("crop", load_size=36, crop_size=32).planned_size((1, 400)) == (32, 12800)
    # resize_and_crop makes every image load_size square: the strip trains.
    assert strip in UnalignedDataset(dir_a, dir_b, Preprocess("resize_and_crop", 36, 32), max_pixels=10_000).files_a
    # Every image of a domain skipped: the message gives the first one's reason, whose fix is not the option given.
    for p in dir_a.iterdir():
        p.unlink()
    write_image(dir_a / "strip.png", size=(400, 1))
    with pytest.raises(DataError) as e:
        UnalignedDataset(dir_a, dir_b, pre, max_pixels=10_000, skip_bad_images=True)
    assert str(e.value).startswith(f"domain A (data.dir_a) folder {dir_a}: all 1 image files are unreadable, "
                                   "truncated, larger than data.max_pixels (10,000 pixels) or smaller than the "
                                   "discriminator takes; the first: image file ")
    assert "518,400 pixels" in str(e.value) and "skip_bad_images" not in str(e.value)


def test_hidden_files_and_folders_are_skipped_and_counted(two_domains: tuple[Path, Path], write_image) -> None:
    dir_a, dir_b = two_domains
    write_image(dir_a / "._a0.png")  # what macOS leaves beside each file on a foreign disk
    write_image(dir_a / ".cache" / "a9.png")
    (dir_b / ".notes.txt").write_text("not an image: not counted")
    ds = UnalignedDataset(dir_a, dir_b, Preprocess("none", 40, 40, False))
    assert len(ds.files_a) == 3 and len(ds.files_b) == 5
    assert ds.hidden == {"A": [dir_a / ".cache", dir_a / "._a0.png"], "B": []}


_WORKER_BUG = """
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from srunit.data import Preprocess, UnalignedDataset
from srunit.data.unaligned import epoch_loader
from srunit.options import DataConfig

def broken(self, index):
    raise RuntimeError("a bug in a transform")

ds = UnalignedDataset(sys.argv[1], sys.argv[2], Preprocess("none", 40, 40, False))
UnalignedDataset.__getitem__ = broken  # the workers fork after this: they run it
loader = epoch_loader(ds, DataConfig(num_workers=2, preprocess="none", crop_size=40), epoch=0, start=0, batch_size=1,
                      seed=0)
try:
    next(iter(loader))
except RuntimeError as err:
    print("raised:", str(err).splitlines()[0])
    raise
"""


@pytest.mark.slow  # a subprocess with loader workers; the fast tier has test_a_loader_worker_that_dies_is_a_data_error
def test_an_exception_in_a_loader_worker_ends_the_process(two_domains: tuple[Path, Path]) -> None:
    """The worker's exception reaches the caller, and the process exits instead of waiting for its workers."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _WORKER_BUG, *map(str, two_domains)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "raised: Caught RuntimeError in DataLoader worker process" in done.stdout
    assert "a bug in a transform" in done.stderr


def test_a_loader_worker_that_dies_is_a_data_error(two_domains: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
                                                   ) -> None:
    """A worker killed (as the out-of-memory killer does) ends the epoch with a DataError saying what to lower."""
    import os
    import signal

    from srunit.data.unaligned import epoch_loader

    parent = os.getpid()

    def killed(self: UnalignedDataset, index: int) -> dict:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return {}

    ds = UnalignedDataset(*two_domains, Preprocess("none", 40, 40, False))
    monkeypatch.setattr(UnalignedDataset, "__getitem__", killed)
    loader = epoch_loader(ds, DataConfig(num_workers=2, preprocess="none", crop_size=40), epoch=0, start=0,
                          batch_size=1, seed=0)
    with pytest.raises(DataError, match=r"a data-loader worker process died while loading images \(DataLoader worker "
                                        r"\(pid.*lower data\.num_workers \(now 2\)"):
        next(iter(loader))


def test_a_loader_worker_that_dies_while_the_workers_start_is_a_data_error_too() -> None:
    """The worker can die before the first batch, while torch starts the iterator (seen once in the fast tier as
    torch's own RuntimeError); the message is the same as for a death during a batch."""
    from srunit.data.unaligned import _batches

    def start() -> Iterator[Any]:
        raise RuntimeError("DataLoader worker (pid 1958) is killed by signal: Killed.")

    with pytest.raises(DataError, match=r"a data-loader worker process died while loading images \(DataLoader worker "
                                        r"\(pid 1958\).*lower data\.num_workers \(now 3\)"):
        next(_batches(start, 3))


def test_flags_given_as_text_are_refused(two_domains: tuple[Path, Path]) -> None:
    """Python's `if` takes any non-empty text as true: skip_bad_images="no" skipped images, shuffle="no" shuffled."""
    dir_a, dir_b = two_domains
    pre = Preprocess(load_size=36, crop_size=32)
    with pytest.raises(TypeError, match="UnalignedDataset: skip_bad_images must be True or False, got str 'no'"):
        UnalignedDataset(dir_a, dir_b, pre, skip_bad_images="no")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="UnalignedDataset: serial_batches must be True or False, got int 1"):
        UnalignedDataset(dir_a, dir_b, pre, serial_batches=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="EpochSampler: shuffle must be True or False, got str 'false'"):
        EpochSampler(4, seed=0, epoch=0, shuffle="false")  # type: ignore[arg-type]
