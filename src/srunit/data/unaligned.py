"""Unpaired two-domain dataset and a resumable epoch sampler.

Reproducibility contract: item ``i`` of epoch ``e`` is a pure function of (seed, e, i) and the
files on disk. It does not depend on the number of DataLoader workers, on which worker loads
it, or on what was loaded before, so a run resumed mid-epoch sees exactly the same batches.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from srunit.checks import DEFAULT_MAX_PIXELS, check_flag, check_int, own_least_side
from srunit.data.files import scan_images
from srunit.data.images import (
    FILE_FIX,
    SKIP_HINT,
    PixelLimitTally,
    TooManyPixels,
    check_pixels,
    image_size,
    load_rgb,
)
from srunit.data.transforms import Preprocess, warn_small
from srunit.errors import ConfigError, DataError, SrunitError
from srunit.options import DataConfig

__all__ = ["UnalignedDataset", "EpochSampler", "epoch_loader"]

logger = logging.getLogger("srunit.data")

_DIR_HINT = "pass --data.root DIR containing trainA/ and trainB/, or --data.dir_a/--data.dir_b"
_ADVICE: dict[str, Any] = dict(fix=SKIP_HINT, limit_option="data.max_pixels")  # the options training has


class UnalignedDataset(Dataset[dict[str, Any]]):
    """Images from two folders (domains A and B) without any pairing.

    Item ``index`` is::

        {"A": (3, H, W) float32 in [-1, 1],  # files_a[index % len(files_a)]
         "B": (3, H', W') float32 in [-1, 1], # files_b[index % len(files_b)] if serial_batches,
                                              # else a random file of B
         "A_path": str, "B_path": str}

    All randomness of item ``index`` (B file choice, crops, flips) comes from
    ``numpy.random.SeedSequence([seed, epoch, index])``, split into independent streams for the
    B choice, A's transform and B's transform. Call ``set_epoch`` before each epoch; note that
    DataLoader workers hold copies of the dataset, so with ``persistent_workers=True`` the new
    epoch would not reach them (use non-persistent workers, the default).

    Args:
        dir_a, dir_b: image folders, scanned recursively (see ``scan_images``).
        preprocess: the transform applied to both domains.
        seed: non-negative base seed.
        skip_bad_images: if True, every file is fully decoded once here and unreadable or
            truncated ones are dropped (counts in ``num_skipped`` and the log). If False, only
            file headers are checked here and a truncated file raises DataError when loaded.
        serial_batches: pair A[i] with B[i % len(B)] instead of a random B.
        max_pixels: images with more pixels, as stored or as ``preprocess`` resizes them
            (`Preprocess.planned_size`), are refused (a DataError naming data.max_pixels) or, with
            skip_bad_images, skipped; checked from the headers before training starts.

    Raises:
        DataError: a folder is missing or has no images, a file is not an image (when not
            skipping), or every file of a domain is unreadable.
    """

    def __init__(self, dir_a: str | Path, dir_b: str | Path, preprocess: Preprocess, *,
                 seed: int = 0, skip_bad_images: bool = False, serial_batches: bool = False,
                 max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = 0, min_side_why: str | None = None,
                 _roles: tuple[str, str] | None = None) -> None:
        self.dir_a = Path(dir_a)
        self.dir_b = Path(dir_b)
        self.preprocess = preprocess
        self.seed = check_int(seed, "seed", 0)
        self.skip_bad_images = check_flag(skip_bad_images, "UnalignedDataset: skip_bad_images")
        self.serial_batches = check_flag(serial_batches, "UnalignedDataset: serial_batches")
        self.max_pixels = check_int(max_pixels, "data.max_pixels", 1)
        # The shortest side the discriminator takes (3 x 2^model.n_layers_d), checked for images kept at their own
        # size (a crop is checked with the config): a 32 x 16 image with data.preprocess none was torch's traceback
        # ("Kernel size can't be greater than actual input size") at the first step.
        self.min_side = check_int(min_side, "UnalignedDataset: min_side", 0)
        self.min_side_why = min_side_why  # what takes min_side, where not the patch discriminator (DRIT's)
        self.epoch = 0
        roles = _roles or ("domain A (data.dir_a)", "domain B (data.dir_b)")
        self.num_skipped: dict[str, int] = {"A": 0, "B": 0}
        self.hidden: dict[str, list[Path]] = {"A": [], "B": []}  # skipped: names starting with "."
        tally = PixelLimitTally()  # every header of both domains before a file over data.max_pixels is refused
        sizes: dict[Path, tuple[int, int]] = {}  # each file's (w, h) as stored, from the scan
        self.files_a = self._collect("A", self.dir_a, roles[0], tally, sizes)
        self.files_b = self._collect("B", self.dir_b, roles[1], tally, sizes)
        tally.raise_if_any()
        self._warn_small_images(sizes)

    @classmethod
    def from_root(cls, root: str | Path, preprocess: Preprocess, **kw: Any) -> UnalignedDataset:
        """Dataset over ROOT/trainA and ROOT/trainB; keyword arguments as for the constructor."""
        root = Path(root)
        return cls(root / "trainA", root / "trainB", preprocess,
                   _roles=("domain A (data.root/trainA)", "domain B (data.root/trainB)"), **kw)

    @classmethod
    def for_training(cls, config: Any) -> UnalignedDataset:
        """The training set of a run's `Config`, as `train` and `train --dry-run` read it: `from_config`, with each
        image kept at its own size checked against the shortest side the method's networks take (`smallest_side`)."""
        side, why = smallest_side(config.method, config.model)
        return cls.from_config(config.data, seed=config.train.seed, min_side=side, min_side_why=why)

    @classmethod
    def from_config(cls, data: DataConfig, *, seed: int, min_side: int = 0,
                    min_side_why: str | None = None) -> UnalignedDataset:
        """The training set a `DataConfig` describes: its folders, preprocessing and pairing (``min_side``: the
        shortest side the networks take, 3 x 2^model.n_layers_d; 0: not checked; ``min_side_why``: what takes
        it, where another network than the patch discriminator does, see `smallest_side`)."""
        preprocess = Preprocess(data.preprocess, data.load_size, data.crop_size, data.flip)
        options: dict[str, Any] = dict(seed=seed, skip_bad_images=data.skip_bad_images,
                                       serial_batches=data.serial_batches, max_pixels=data.max_pixels,
                                       min_side=min_side, min_side_why=min_side_why)
        if data.root is not None and data.dir_a is None and data.dir_b is None:
            return cls.from_root(data.root, preprocess, **options)
        dir_a, dir_b = data.domain_dirs()
        roles = (f"domain A ({'data.dir_a' if data.dir_a is not None else 'data.root/trainA'})",
                 f"domain B ({'data.dir_b' if data.dir_b is not None else 'data.root/trainB'})")
        return cls(dir_a, dir_b, preprocess, _roles=roles, **options)

    def _check_planned_size(self, path: Path, size: tuple[int, int]) -> None:
        """Refuse an image that data.preprocess would resize past data.max_pixels: scale_width gives a 1 x 200,000
        strip 36 x 7,200,000 pixels, and a crop mode scales a thin image up to fit the crop."""
        w, h = self.preprocess.planned_size(size)
        if w * h > self.max_pixels:
            need = max(w * h, size[0] * size[1])  # the value that lets both the file and its resized image through
            # resize_and_crop resizes every image to load_size x load_size, whatever its shape
            ways = ("lower data.load_size" if self.preprocess.mode == "resize_and_crop" else
                    "crop the image to a less extreme shape, use data.preprocess resize_and_crop")
            statement = (f"image file {path} is {size[0]} x {size[1]}; data.preprocess {self.preprocess.mode} "
                         f"resizes it to {w} x {h} = {w * h:,} pixels, more than data.max_pixels {self.max_pixels:,}")
            raise TooManyPixels(
                f"{statement}; {ways}, or pass data.max_pixels {need} to allow it (memory grows with the pixels)",
                w * h, path=path, need=need, option="data.max_pixels", statement=statement, ways=ways)
        check_pixels(path, size, self.max_pixels, "data.max_pixels")  # as stored (resized, it fits)
        if self.min_side and not self.preprocess.crops and min(w, h) < self.min_side:
            why, shallower = self.min_side_why, ""
            if why is None:  # the patch discriminator: a shallower one takes the image
                why = "the discriminator takes (3 x 2^model.n_layers_d)"
                depth = (min(w, h) // 3).bit_length() - 1  # the largest n with 3 x 2^n <= side
                shallower = f", or a shallower discriminator (model.n_layers_d {depth})" if depth >= 1 else ""
            crop = self.min_side + (-self.min_side) % 4  # a crop the generator takes too (DRIT's 209 was refused)
            raise DataError(
                f"image file {path} is {size[0]} x {size[1]}; data.preprocess {self.preprocess.mode} keeps it at "
                f"{w} x {h}, a side shorter than the {self.min_side} pixels {why}; use a cropping data.preprocess "
                f"(resize_and_crop, with data.load_size and data.crop_size of at least {crop}, a multiple of 4)"
                f"{shallower}, or remove the file")

    def _decode_error(self, path: Path) -> tuple[str | None, tuple[int, int] | None]:
        """Why ``path`` cannot be trained on (unreadable, truncated, more pixels than data.max_pixels as stored or
        as preprocessed), or None, and its size (w, h) where it decodes. The pass of data.skip_bad_images: the fix
        it names is the file's, as the option is given already."""
        try:
            img = load_rgb(path, max_pixels=self.max_pixels, fix=FILE_FIX, limit_option="data.max_pixels")
            self._check_planned_size(path, img.size)
        except DataError as e:
            logger.debug("skipping the image (data.skip_bad_images): %s", e)
            return str(e), None
        return None, img.size

    def _collect(self, domain: str, folder: Path, role: str, tally: PixelLimitTally,
                 sizes: dict[Path, tuple[int, int]]) -> list[Path]:
        files = scan_images(folder, role, hint=_DIR_HINT, hidden=self.hidden[domain])
        if not self.skip_bad_images:
            for path in files:
                # the header's size (nothing decoded), checked as stored and as resized in one message
                sizes[path] = image_size(path, fix=_ADVICE["fix"])
                try:
                    self._check_planned_size(path, sizes[path])
                except TooManyPixels as error:
                    tally.check(error)
            return files
        # Decoding is mostly in C with the GIL released, so threads speed up this one-off pass.
        workers = min(8, os.cpu_count() or 1, len(files))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            decoded = list(pool.map(self._decode_error, files))
        errors = [error for error, _ in decoded]
        sizes.update((path, size) for path, (_, size) in zip(files, decoded) if size is not None)
        good = [p for p, e in zip(files, errors) if e is None]
        self.num_skipped[domain] = len(files) - len(good)
        if not good:
            raise DataError(
                f"{role} folder {folder}: all {len(files)} image files are unreadable, truncated, larger than "
                f"data.max_pixels ({self.max_pixels:,} pixels) or smaller than the discriminator takes; the first: "
                f"{errors[0]}"
            )
        if self.num_skipped[domain]:
            logger.warning("domain %s (%s): skipped %d of %d unreadable, truncated, too large (data.max_pixels) or "
                           "too small images (data.skip_bad_images=true)", domain, folder,
                           self.num_skipped[domain], len(files))
        return good

    def _warn_small_images(self, sizes: dict[Path, tuple[int, int]]) -> None:
        """One warning, here in the main process, for the images smaller than the crop (`Preprocess.scaled_up`);
        the loader's workers load them without a word. Each worker process warned of its own first one, so the
        warning that said "Shown once" came once per worker (twice with the default data.num_workers 2)."""
        files = list(dict.fromkeys([*self.files_a, *self.files_b]))
        small = [(path, found) for path in files if (found := self.preprocess.scaled_up(sizes[path])) is not None]
        if small:
            path, (size, when, action) = small[0]
            warn_small(str(path), size, when, action, self.preprocess.crop_size,
                       f"{len(small)} of the {len(files)} training images are scaled up (shown once).")

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random choices ``__getitem__`` reproduces."""
        self.epoch = check_int(epoch, "epoch", 0)

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def _load(self, path: Path, rng: np.random.Generator) -> torch.Tensor:
        img = load_rgb(path, max_pixels=self.max_pixels, **_ADVICE)
        self._check_planned_size(path, img.size)  # the file may have changed since the scan
        return self.preprocess(img, rng, name=str(path), warn_small=False)  # warned of in the main process

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self)
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for dataset of length {n}")
        index = int(index)
        ss_pick, ss_a, ss_b = np.random.SeedSequence([self.seed, self.epoch, index]).spawn(3)
        path_a = self.files_a[index % len(self.files_a)]
        if self.serial_batches:
            path_b = self.files_b[index % len(self.files_b)]
        else:
            path_b = self.files_b[int(np.random.default_rng(ss_pick).integers(len(self.files_b)))]
        return {
            "A": self._load(path_a, np.random.default_rng(ss_a)),
            "B": self._load(path_b, np.random.default_rng(ss_b)),
            "A_path": str(path_a),
            "B_path": str(path_b),
        }


class EpochSampler(Sampler[int]):
    """This process's dataset indices for one epoch, resumable mid-epoch.

    The epoch's order is a permutation of range(length) (or range(length) itself if not
    ``shuffle``), a pure function of (seed, epoch). It is consumed in global batches of
    ``batch_size * world_size`` indices; process ``rank`` takes the ``rank``-th ``batch_size``
    indices of each global batch, so the processes' shards are disjoint and one global batch holds
    the same images whatever the number of processes. A last incomplete global batch is dropped.
    ``start`` skips that many indices of the order (a multiple of the global batch when resuming
    after k steps of an epoch: ``start = k * batch_size * world_size``).
    """

    def __init__(self, length: int, *, seed: int, epoch: int, start: int = 0, shuffle: bool = True,
                 batch_size: int = 1, rank: int = 0, world_size: int = 1) -> None:
        self.length = check_int(length, "length", 0)
        self.seed = check_int(seed, "seed", 0)
        self.epoch = check_int(epoch, "epoch", 0)
        self.start = check_int(start, "start", 0)
        if self.start > self.length:
            raise DataError(
                f"sampler start {start} is beyond the epoch length {length}; the checkpoint "
                f"does not match this dataset (was the data folder changed?)"
            )
        self.shuffle = check_flag(shuffle, "EpochSampler: shuffle")
        self.batch_size = check_int(batch_size, "batch_size", 1)
        self.world_size = check_int(world_size, "world_size", 1)
        self.rank = check_int(rank, "rank", 0)
        if self.rank >= self.world_size:
            raise ConfigError(f"rank {rank} is not below the world size {world_size}")

    def _order(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.length)
        # Mixing seed and epoch through a SeedSequence keeps (seed, epoch) pairs such as
        # (1, 0) and (0, 1) from sharing a permutation, as plain seed + epoch would.
        state = np.random.SeedSequence([self.seed, self.epoch]).generate_state(1, np.uint64)[0]
        gen = torch.Generator().manual_seed(int(state) & ((1 << 63) - 1))
        return torch.randperm(self.length, generator=gen)

    def __iter__(self) -> Iterator[int]:
        rest = self._order()[self.start:]
        if self.world_size == 1:
            return iter(rest.tolist())
        per_step = self.batch_size * self.world_size
        steps = len(rest) // per_step
        shard = rest[: steps * per_step].view(steps, self.world_size, self.batch_size)[:, self.rank]
        return iter(shard.reshape(-1).tolist())

    def __len__(self) -> int:
        rest = self.length - self.start
        if self.world_size == 1:
            return rest
        return rest // (self.batch_size * self.world_size) * self.batch_size


def _leave_stop_signals_to_the_trainer(worker_id: int) -> None:
    """A loader worker ignores SIGINT, SIGTERM and SIGUSR1. A Ctrl-C reaches the whole process group
    and schedulers signal every process of a job, but only the training process may decide to stop
    (after checkpointing the step); it shuts its workers down itself."""
    for name in ("SIGINT", "SIGTERM", "SIGUSR1"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


def epoch_loader(dataset: UnalignedDataset, data: DataConfig, *, epoch: int, start: int, batch_size: int, seed: int,
                 rank: int = 0, world_size: int = 1, pin_memory: bool = False) -> DataLoader:
    """The batches of one epoch for process ``rank``, from sample ``start`` of the epoch's order on.

    ``data.num_workers`` worker processes decode and augment in parallel; ``pin_memory`` puts the
    batches in page-locked memory so that the copy to a GPU runs asynchronously.
    """
    dataset.set_epoch(epoch)
    sampler = EpochSampler(len(dataset), seed=seed, epoch=epoch, start=start, shuffle=not data.serial_batches,
                           batch_size=batch_size, rank=rank, world_size=world_size)
    return _WorkerSafeLoader(
        dataset, batch_size=batch_size, sampler=sampler, drop_last=True, num_workers=data.num_workers,
        pin_memory=pin_memory,
        # Its own generator: creating an iterator must not consume the global RNG, or a resumed run
        # would draw different noise than an uninterrupted one.
        generator=torch.Generator().manual_seed(seed),
        worker_init_fn=_leave_stop_signals_to_the_trainer if data.num_workers > 0 else None,
    )


class _WorkerSafeLoader(DataLoader):
    """A DataLoader whose iteration cannot leave worker processes behind, and whose workers' errors read as the
    error itself.

    Torch re-raises a worker's exception in the training process while the iterator, kept alive by the traceback,
    still holds its workers; they ignore SIGTERM (``_leave_stop_signals_to_the_trainer``), so the interpreter's exit
    would wait for them forever. Here the workers are shut down however the iteration ends.
    """

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return _batches(super().__iter__, self.num_workers)


def _batches(start: Callable[[], Iterator[Any]], num_workers: int) -> Iterator[Any]:
    """Iterate ``start()``; the workers start inside the guard, since one can die before the first batch."""
    it = None
    try:
        while True:
            try:
                if it is None:
                    it = start()
                batch = next(it)
            except StopIteration:
                return
            except SrunitError as e:
                raise _from_worker(e) from None
            except RuntimeError as e:
                if "DataLoader worker (pid" not in str(e):  # killed (e.g. out of memory), not an error it raised
                    raise
                # A worker that dies while the iterator starts leaves it reachable from these frames alone: let
                # them go, so that it is collected and shuts its other workers down.
                e.__traceback__ = None
                raise DataError(f"a data-loader worker process died while loading images ({e}); if the system "
                                f"ran out of memory, lower data.num_workers (now {num_workers}) or data.load_size"
                                ) from None
            yield batch
    finally:
        shutdown = getattr(it, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


def _from_worker(e: SrunitError) -> SrunitError:
    """``e`` as the worker raised it: torch rebuilds a worker's exception from the worker's formatted traceback
    ("Caught DataError in DataLoader worker process 0. Original Traceback ..."); its message is the last entry."""
    text = str(e)
    if "in DataLoader worker process" not in text:
        return e
    kind = type(e)
    head = f"{kind.__module__}.{kind.__qualname__}: "
    at = text.rfind(head)
    if at < 0:
        return e
    try:
        return kind(text[at + len(head):].strip())
    except Exception:  # a subclass whose constructor takes other arguments: keep torch's message
        return e


def smallest_side(method: Any, model: Any) -> tuple[int, str | None]:
    """The shortest side an image kept at its own size may have for a method's options and the model config, and
    what takes it (None: the patch discriminator, 3 x 2^model.n_layers_d). A method whose own discriminators set
    it (DRIT) says so with ``smallest_side()``."""
    own = own_least_side(method)
    return own if own is not None else (3 * 2**model.n_layers_d, None)
