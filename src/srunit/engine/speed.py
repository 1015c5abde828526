"""The speed benchmarks: training-step throughput and peak memory of a preset on random images, and the
throughput of the data pipeline alone (decoding, augmentation, batching) on a real image folder."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from srunit.checks import MAX_BATCH, MAX_STEPS, check_crop_size, check_int, own_least_side
from srunit.config import Config, load_config, refuse_overrides_of
from srunit.data import UnalignedDataset, epoch_loader
from srunit.engine import distributed
from srunit.engine.runner import StepRunner
from srunit.engine.schedule import Schedule
from srunit.engine.trainer import check_no_void_options
from srunit.methods import switched_on_from_start
from srunit.runtime.device import resolve_device
from srunit.runtime.provenance import device_name

__all__ = ["peak_memory_gib", "measure_speed", "measure_loader"]


def peak_memory_gib(device: torch.device) -> float:
    """Peak allocated CUDA memory on a GPU, the process's peak RSS on the CPU, in GiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**30 if sys.platform == "darwin" else 2**20)


def measure_speed(preset: str | Path, *, size: int = 256, batch_size: int = 1, steps: int = 5, warmup: int = 2,
                  device: str = "auto", overrides: Sequence[str] = (), robust_active: bool = True) -> dict[str, Any]:
    """Time ``steps`` whole training steps (D step + G/F step) after ``warmup`` untimed ones.

    The images are random (B, 3, size, size) tensors, the same every step. ``overrides`` are
    config overrides (``section.key=value``) applied after ``batch_size`` and ``device``; with
    ``robust_active`` SRUNIT's robustness loss (and any added term of the ablation methods) is on from
    the first step, so Eq. 3 is timed.
    Started by torchrun, every process trains ``batch_size`` images per step with the gradients
    averaged as in training; ``images_per_s`` counts all processes, timed on rank 0's clock, and
    ``peak_memory_gib`` is this process's. Returns the measurement as a JSON-ready dict.
    """
    size = check_int(size, "--size", 4, maximum=65536)
    check_int(steps, "--steps", 1, maximum=MAX_STEPS)
    check_int(warmup, "--warmup", 0, maximum=MAX_STEPS)
    # The random batches are built from --size and --batch-size, and --steps counts the steps timed: these overrides
    # were dropped without a word (`--train.batch_size 4` timed batches of 1 and reported 1; `--train.steps 50`
    # timed the 5 of --steps).
    refuse_overrides_of(overrides, {"train.batch_size": "--batch-size", "data.crop_size": "--size",
                                    "data.load_size": "--size", "train.steps": "--steps"}, "bench speed")
    batch_size = check_int(batch_size, "--batch-size", 1, maximum=MAX_BATCH)
    config = load_config(preset, [f"train.batch_size={batch_size}", f"train.device={device}", *overrides])
    # The random batches are size x size: sizes the networks cannot take were a RuntimeError traceback mid-step.
    check_crop_size(size, config.model.n_layers_d, "--size", least=own_least_side(config.method))
    if robust_active:  # time the steps that include Eq. 3 (and any other added term)
        config = replace(config, method=switched_on_from_start(config.method))
    # An option the method leaves without effect timed the networks without it (CycleGAN's model.projector_dim).
    check_no_void_options(config, overrides, preset)
    option = "--device" if config.train.device == device else "train.device"  # the one the user set, by its name
    job, dev = distributed.setup(resolve_device(config.train.device, option))
    runner = StepRunner(config, dev, Schedule.constant(warmup + steps), job)
    gen = torch.Generator(device="cpu").manual_seed(0)
    batch = {k: (torch.rand(batch_size, 3, size, size, generator=gen) * 2 - 1).to(dev) for k in ("A", "B")}
    # Methods that need data statistics (E1) get them from a second random batch of other contrasts.
    runner.prepare([batch, {k: v * 0.5 for k, v in batch.items()}])

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    start = time.perf_counter()
    for _ in range(warmup):
        runner.train_step(batch)
    sync()
    job.barrier()
    warmup_seconds = time.perf_counter() - start  # includes torch.compile's compilation when it is on
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    start = time.perf_counter()
    for _ in range(steps):
        logs = runner.train_step(batch)
    sync()
    job.barrier()
    elapsed = job.broadcast_object(time.perf_counter() - start)  # rank 0's clock
    finite = all(torch.isfinite(v).item() for v in logs.values())
    return {
        "preset": str(preset), "method": config.method.name, "size": size, "batch_size": batch_size,
        "world_size": job.world_size, "global_batch_size": batch_size * job.world_size,
        "device": str(dev), "device_name": device_name(dev),
        "threads": torch.get_num_threads(), "precision": config.train.precision, "compile": config.train.compile,
        # The other settings that change the speed (speed.md): two measurements that differed only in them
        # recorded the same settings.
        "channels_last": config.train.channels_last,
        "activation_checkpointing": config.train.activation_checkpointing,
        "steps": steps, "warmup": warmup, "warmup_seconds": warmup_seconds, "seconds_per_step": elapsed / steps,
        "steps_per_s": steps / elapsed, "images_per_s": steps * batch_size * job.world_size / elapsed,
        "peak_memory_gib": peak_memory_gib(dev), "losses_finite": finite, "torch": torch.__version__,
    }


def measure_loader(config: Config, *, batches: int = 50, warmup: int = 5) -> dict[str, Any]:
    """Images per second the data pipeline of ``config`` delivers: files decoded, augmented
    (``data.preprocess``), batched by ``data.num_workers`` workers and pinned as for a GPU run.

    Counts images of domain A (each item also holds one of domain B, so twice as many files are
    decoded). ``warmup`` batches first (worker start-up); the epoch restarts if it runs out.
    """
    check_int(batches, "--batches", 1, maximum=MAX_STEPS)
    check_int(warmup, "--warmup", 0, maximum=MAX_STEPS)
    t, d = config.train, config.data
    dataset = UnalignedDataset.from_config(d, seed=t.seed)
    # A batch larger than the data gives an epoch of no batch (drop_last): the stream below looped for ever.
    Schedule.from_config(t, len(dataset))
    pin = torch.cuda.is_available()

    def stream():  # noqa: ANN202 - an endless iterator of batches
        epoch = 0
        while True:
            yield from epoch_loader(dataset, d, epoch=epoch, start=0, batch_size=t.batch_size, seed=t.seed,
                                    pin_memory=pin)
            epoch += 1

    it = stream()
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    elapsed = time.perf_counter() - start
    return {
        "images_per_s": batches * t.batch_size / elapsed, "batches": batches, "batch_size": t.batch_size,
        "num_workers": d.num_workers, "preprocess": d.preprocess, "load_size": d.load_size,
        "crop_size": d.crop_size, "dataset_size": len(dataset), "pin_memory": pin,
        "cpu": device_name(torch.device("cpu")), "torch": torch.__version__,
    }
