"""`srunit bench speed`: training-step throughput and peak memory of a method on random tensors;
`srunit bench synthscapes` lives in ``bench_synthscapes``."""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from srunit._atomic import write_json_atomic
from srunit.cli.bench_synthscapes import add_synthscapes_parser, run_synthscapes
from srunit.cli.overrides import split_overrides
from srunit.config import load_config, preset_names
from srunit.engine import StepRunner, resolve_device

ACCEPTS_OVERRIDES = True


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmarks: training speed (speed) and semantic flipping on SynthScapes (synthscapes)",
        description="`speed`: training-step throughput and peak memory. `synthscapes`: train methods on data "
        "with unmatched and matched class statistics and score the translations against exact ground truth.",
    )
    kinds = p.add_subparsers(dest="bench_kind", metavar="KIND", required=True)
    p = kinds.add_parser(
        "speed",
        help="measure training-step throughput and peak memory",
        description="Time full training steps (D step + G/F step) of a preset on random images, "
        "warm-up steps excluded. Peak memory is the process's peak RSS on CPU and the peak "
        "allocated CUDA memory on GPU. Config overrides (--section.key VALUE) apply as in train.",
    )
    p.add_argument("--preset", default="srunit", help=f"{', '.join(preset_names())} or a YAML file")
    p.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    p.add_argument("--batch-size", type=int, default=1, help="images per domain per step (default 1)")
    p.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--robust-active", choices=["yes", "no"], default="yes",
                   help="time SRUNIT with its robustness loss switched on (default yes)")
    p.add_argument("--json", type=Path, help="also write the result as JSON to this file")
    add_synthscapes_parser(kinds)


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**30 if sys.platform == "darwin" else 2**20)


def benchmark(preset: str, size: int, batch_size: int, steps: int, warmup: int, device: str,
              overrides: list[str], robust_active: bool = True) -> dict[str, Any]:
    overrides = [f"train.batch_size={batch_size}", f"train.device={device}", *overrides]
    config = load_config(preset, overrides)
    if robust_active and hasattr(config.method, "robust"):  # time the steps that include Eq. 3
        method = replace(config.method, robust=replace(config.method.robust, start=0.0))
        config = replace(config, method=method)
    dev = resolve_device(config.train.device)
    runner = StepRunner(config, dev, total_steps=warmup + steps, lr_factor=lambda _: 1.0)
    gen = torch.Generator(device="cpu").manual_seed(0)
    batch = {k: (torch.rand(batch_size, 3, size, size, generator=gen) * 2 - 1).to(dev) for k in ("A", "B")}

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for _ in range(warmup):
        runner.train_step(batch)
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    start = time.perf_counter()
    for _ in range(steps):
        logs = runner.train_step(batch)
    sync()
    elapsed = time.perf_counter() - start
    finite = all(torch.isfinite(v).item() for v in logs.values())
    return {
        "preset": preset, "method": config.method.name, "size": size, "batch_size": batch_size,
        "device": str(dev), "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "precision": config.train.precision, "compile": config.train.compile,
        "steps": steps, "warmup": warmup, "seconds_per_step": elapsed / steps,
        "steps_per_s": steps / elapsed, "images_per_s": steps * batch_size / elapsed,
        "peak_memory_gib": peak_memory_gib(dev), "losses_finite": finite, "torch": torch.__version__,
    }


def run(args: argparse.Namespace, extra: list[str]) -> int:
    if args.bench_kind == "synthscapes":
        return run_synthscapes(args, extra)
    result = benchmark(args.preset, args.size, args.batch_size, args.steps, args.warmup, args.device,
                       split_overrides(extra), robust_active=args.robust_active == "yes")
    mem = "peak RSS" if result["device"] == "cpu" else "peak CUDA alloc"
    print(f"| preset | size | batch | device | it/s | img/s | {mem} GiB |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {result['preset']} | {result['size']} | {result['batch_size']} | {result['device']} "
          f"({result['threads']} threads) | {result['steps_per_s']:.3f} | {result['images_per_s']:.2f} "
          f"| {result['peak_memory_gib']:.2f} |")
    if args.json:
        write_json_atomic(args.json, result)
    return 0
