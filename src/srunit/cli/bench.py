"""`srunit bench speed`: training-step throughput and peak memory of a method on random tensors;
`srunit bench loader`: the data pipeline's throughput; `srunit bench synthscapes` lives in
``bench_synthscapes``."""

from __future__ import annotations

import argparse
from pathlib import Path

from srunit._atomic import write_json_atomic
from srunit._outputs import guard_optional_output, output_arg
from srunit.cli.bench_synthscapes import add_synthscapes_parser, run_synthscapes
from srunit.cli.commands import COMMANDS
from srunit.cli.overrides import split_overrides
from srunit.config import load_config, preset_names
from srunit.engine import distributed
from srunit.engine.speed import measure_loader, measure_speed
from srunit.errors import ConfigError

ACCEPTS_OVERRIDES = True


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help=COMMANDS["bench"].summary,
        description="`speed`: training-step throughput and peak memory. `loader`: the data pipeline's images per "
        "second. `synthscapes`: train methods on data with unmatched and matched class statistics and score the "
        "translations against exact ground truth.",
    )
    kinds = p.add_subparsers(dest="bench_kind", metavar="KIND", required=True)
    p = kinds.add_parser(
        "speed",
        help="measure training-step throughput and peak memory",
        description="Time full training steps (D step + G/F step) of a preset on random images, "
        "warm-up steps excluded; under torchrun, data-parallel over its processes (img/s counts all of them). "
        "Peak memory is the process's peak RSS on CPU and the peak "
        "allocated CUDA memory on GPU. Config overrides (--section.key VALUE) apply as in train.",
    )
    p.add_argument("--preset", default="srunit", help=f"{', '.join(preset_names())} or a YAML file (default srunit)")
    p.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    p.add_argument("--batch-size", type=int, default=1, help="images per domain per step (default 1)")
    p.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--robust-active", choices=["yes", "no"], default="yes",
                   help="time SRUNIT with its robustness loss switched on (default yes)")
    p.add_argument("--json", type=output_arg, help="also write the result as JSON to this file")
    p.add_argument("--overwrite", action="store_true", help="replace --json if it exists")
    p = kinds.add_parser(
        "loader",
        help="measure the data pipeline's throughput (decoding, augmentation, batching)",
        description="Iterate the training data loader of a config (--data.root DIR or --data.dir_a/--data.dir_b, "
        "--data.num_workers N, --data.preprocess ...) without training and report images per second: how many "
        "images a GPU can be fed. It reads the data.* options of the config, --train.batch_size and --train.seed; "
        "other overrides are refused.",
    )
    p.add_argument("--preset", default="srunit", help=f"{', '.join(preset_names())} or a YAML file (default srunit)")
    p.add_argument("--batches", type=int, default=50, help="timed batches (default 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed batches first (default 5)")
    p.add_argument("--json", type=output_arg, help="also write the result as JSON to this file")
    p.add_argument("--overwrite", action="store_true", help="replace --json if it exists")
    add_synthscapes_parser(kinds)


def _check_json(args: argparse.Namespace, data: list[tuple[str, Path]] | None = None) -> None:
    guard_optional_output(args.json, "--json", inputs=[("--preset", Path(args.preset)), *(data or [])],
                          overwrite=args.overwrite)


# What `bench loader` reads of a config besides its data.* options (`measure_loader`).
_LOADER_READS = ("train.batch_size", "train.seed")
# What it takes besides: the depths a config checks data.crop_size against (a crop too small for the discriminators
# is refused with advice to make them shallower, which must then be taken); they change nothing it times.
_LOADER_CROP_CHECKS = ("model.n_layers_d", "method.dis_scales", "method.dis_layers", "method.content_dis_layers")


def _run_loader(args: argparse.Namespace, extra: list[str]) -> int:
    overrides = split_overrides(extra)
    for item in overrides:
        key = item.partition("=")[0].strip()
        if not key.startswith("data.") and key not in _LOADER_READS + _LOADER_CROP_CHECKS:
            raise ConfigError(f"--{key} has no effect on bench loader: it times the data pipeline, which reads the "
                              f"data.* options and {' and '.join(_LOADER_READS)} only (and takes the discriminators' "
                              f"depths its crop is checked against); leave --{key} out")
    config = load_config(args.preset, overrides)
    from srunit.engine.trainer import check_no_void_options

    check_no_void_options(config, overrides, args.preset)  # data.load_size without a resize was reported as timed
    # The images it reads are inputs: `--json DATA/trainA/0000.png --overwrite` replaced a training image.
    _check_json(args, [(f"--data.{key}", Path(value)) for key in ("root", "dir_a", "dir_b")
                       if (value := getattr(config.data, key))])
    result = measure_loader(config, batches=args.batches, warmup=args.warmup)
    print("| workers | batch | preprocess | load | crop | img/s |")
    print("|---|---|---|---|---|---|")
    mode = result["preprocess"]  # a size the mode does not use is not shown as timed (crop: no resize; none: neither)
    load = "-" if mode in ("crop", "none") else result["load_size"]
    crop = "-" if mode == "none" else result["crop_size"]
    print(f"| {result['num_workers']} | {result['batch_size']} | {mode} | {load} | {crop} "
          f"| {result['images_per_s']:.1f} |")
    if args.json:
        write_json_atomic(args.json, result)
    return 0


def run(args: argparse.Namespace, extra: list[str]) -> int:
    if args.bench_kind == "synthscapes":
        return run_synthscapes(args, extra)
    if args.bench_kind == "loader":
        return _run_loader(args, extra)
    _check_json(args)
    try:
        result = measure_speed(args.preset, size=args.size, batch_size=args.batch_size, steps=args.steps,
                               warmup=args.warmup, device=args.device, overrides=split_overrides(extra),
                               robust_active=args.robust_active == "yes")
    finally:
        distributed.shutdown()
    if distributed.from_environment().rank != 0:
        return 0
    mem = "peak RSS" if result["device"] == "cpu" else "peak CUDA alloc"
    print(f"| preset | size | batch/process | processes | precision | compile | channels-last | checkpointing "
          f"| device | it/s | img/s | {mem} GiB/process |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    yes_no = {True: "yes", False: "no"}
    print(f"| {result['preset']} | {result['size']} | {result['batch_size']} | {result['world_size']} "
          f"| {result['precision']} | {yes_no[result['compile']]} | {yes_no[result['channels_last']]} "
          f"| {yes_no[result['activation_checkpointing']]} | {result['device']} "
          f"({result['threads']} threads) | {result['steps_per_s']:.3f} | {result['images_per_s']:.2f} "
          f"| {result['peak_memory_gib']:.2f} |")
    if args.json:
        write_json_atomic(args.json, result)
    return 0
