"""Training speed of srunit beside the authors' public code, measured in one run on one machine.

    python benchmarks/speed_vs_public.py --public DIR                       # GPU defaults when CUDA is there
    python benchmarks/speed_vs_public.py --public DIR --device cpu --size 128 --batch-sizes 1

Every measurement is a fresh process (`srunit bench speed` for ours, benchmarks/public_speed.py for
the public code, DIR being a checkout of github.com/SeanJia/SRUNIT), on random images, warm-up steps
excluded; the rounds alternate ours and theirs so that a slow spell of the machine hits both, and
the table gives the median over rounds. The ratio compares each of our rows with the public code's
best batch size for the same method. Peak memory is the peak CUDA allocation on a GPU, the peak
process RSS on a CPU, per process. With --processes 1,2 (or 1,8 on an 8-GPU machine) our rows are
also measured data-parallel under torchrun, which gives the scaling. JSON files of every
measurement go to --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PUBLIC_PRESETS = ("cut", "srunit-official")  # the paper's all-layers SRUNIT is not in the public code
# Our variants: label -> config overrides.
VARIANTS = {
    "fp32": [],
    "bf16": ["--train.precision", "bf16"],
    "bf16+cl": ["--train.precision", "bf16", "--train.channels_last", "true"],
    "bf16+cl+compile": ["--train.precision", "bf16", "--train.channels_last", "true", "--train.compile", "true"],
    "bf16+ckpt": ["--train.precision", "bf16", "--train.activation_checkpointing", "true"],
}


def _measure(cmd: list[str], out: Path) -> dict | None:
    done = subprocess.run([*cmd, "--json", str(out)], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}", file=sys.stderr, flush=True)
        return None
    result = json.loads(out.read_text())
    # One line per measurement as it comes, so that a run cut short still shows what it measured.
    print(f"{out.stem}: {result['images_per_s']:.2f} img/s, peak {result['peak_memory_gib']:.2f} GiB", flush=True)
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--public", type=Path, help="checkout of the public SRUNIT code (leave out to time only ours)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--presets", default="cut,srunit-official,srunit")
    p.add_argument("--batch-sizes", default=None, help="ours, comma-separated (default: 1,8,32 on GPU, 1 on CPU)")
    p.add_argument("--public-batch-sizes", default=None, help="default: 1,4,8 on GPU, 1 on CPU")
    p.add_argument("--variants", default=None, help=f"of {', '.join(VARIANTS)} (default: fp32,bf16+cl on GPU "
                                                     "plus bf16+cl+compile; fp32,bf16,bf16+cl,bf16+ckpt on CPU)")
    p.add_argument("--processes", default="1", help="ours: comma-separated process counts; above 1 the step runs "
                   "data-parallel under torchrun (one process per GPU; on a CPU, gloo with one thread each)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 20 on GPU, 4 on CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps (default 5 on GPU, 2 on CPU)")
    p.add_argument("--out", type=Path, default=Path("bench-speed"))
    args = p.parse_args()

    if args.public is not None and not (args.public / "models" / "srunit_model.py").is_file():
        p.error(f"--public {args.public} is not a checkout of the public SRUNIT code (no models/srunit_model.py); "
                "extract github.com/SeanJia/SRUNIT there, or leave --public out to time only ours")
    import torch

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    elif args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error(f"--device {args.device}: torch {torch.__version__} sees no CUDA device here; "
                "pass --device cpu (or leave --device out)")
    gpu = args.device.startswith("cuda")

    def counts(option: str, text: str) -> list[int]:
        """A comma-separated list of positive whole numbers, or a one-line error naming the option."""
        try:
            values = [int(x) for x in text.split(",") if x.strip()]
        except ValueError:
            values = []
        if not values or min(values) < 1:
            p.error(f"{option} {text!r}: give comma-separated whole numbers of 1 or more, e.g. 1,8")
        return values

    if args.rounds < 1:
        p.error(f"--rounds {args.rounds}: give 1 or more (the table is the median over rounds)")
    if args.out.exists() and not args.out.is_dir():
        p.error(f"--out {args.out} is a file; it names a folder for the JSON files of every measurement")
    presets = [x for x in args.presets.split(",") if x]
    batches = counts("--batch-sizes", args.batch_sizes or ("1,8,32" if gpu else "1"))
    public_batches = counts("--public-batch-sizes", args.public_batch_sizes or ("1,4,8" if gpu else "1"))
    variants = (args.variants or ("fp32,bf16+cl,bf16+cl+compile" if gpu else "fp32,bf16,bf16+cl,bf16+ckpt")).split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        p.error(f"--variants: unknown {unknown}; known: {', '.join(VARIANTS)}")
    steps, warmup = args.steps or (20 if gpu else 4), args.warmup or (5 if gpu else 2)
    args.out.mkdir(parents=True, exist_ok=True)

    processes = counts("--processes", args.processes)
    results: dict[tuple[str, str, str, int, int], list[dict]] = {}
    failed = 0
    for r in range(args.rounds):
        for preset in presets:
            if args.public is not None and preset in PUBLIC_PRESETS:
                for b in public_batches:
                    cmd = [sys.executable, str(HERE / "public_speed.py"), "--code", str(args.public), "--preset",
                           preset, "--size", str(args.size), "--batch-size", str(b), "--steps", str(steps),
                           "--warmup", str(warmup), "--device", args.device.split(":")[0]]
                    res = _measure(cmd, args.out / f"public-{preset}-b{b}-r{r}.json")
                    failed += res is None
                    if res:
                        results.setdefault(("public", preset, "fp32", b, 1), []).append(res)
            for variant in variants:
                for b in batches:
                    for n in processes:
                        launch = [sys.executable] if n == 1 else [
                            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n)]
                        cmd = [*launch, "-m", "srunit", "bench", "speed", "--preset", preset, "--size", str(args.size),
                               "--batch-size", str(b), "--steps", str(steps), "--warmup", str(warmup),
                               "--device", args.device, *VARIANTS[variant]]
                        res = _measure(cmd, args.out / f"srunit-{preset}-{variant}-b{b}-p{n}-r{r}.json")
                        failed += res is None
                        if res:
                            results.setdefault(("srunit", preset, variant, b, n), []).append(res)

    def median(key: tuple, field: str) -> float:
        return statistics.median(x[field] for x in results[key])

    best_public = {preset: max(median(k, "images_per_s") for k in results if k[0] == "public" and k[1] == preset)
                   for preset in presets if any(k[0] == "public" and k[1] == preset for k in results)}
    machine = next(iter(results.values()))[0].get("device_name", args.device) if results else args.device
    mem = "peak CUDA GiB" if gpu else "peak RSS GiB"
    print(f"\n{machine}; {args.size}x{args.size}; median of {args.rounds} rounds, {steps} timed steps after {warmup}")
    print(f"| code | preset | variant | batch/process | processes | img/s | range | {mem}/process | GiB/image "
          "| x public best | warm-up s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for key in sorted(results, key=lambda k: (k[1], k[0] != "public", k[2], k[3], k[4])):
        code, preset, variant, b, n = key
        ips = median(key, "images_per_s")
        lo, hi = min(x["images_per_s"] for x in results[key]), max(x["images_per_s"] for x in results[key])
        peak = median(key, "peak_memory_gib")
        ratio = f"{ips / best_public[preset]:.2f}" if preset in best_public else "-"
        warm = f"{median(key, 'warmup_seconds'):.1f}" if code == "srunit" else "-"  # includes compile time
        print(f"| {code} | {preset} | {variant} | {b} | {n} | {ips:.2f} | {lo:.2f}-{hi:.2f} | {peak:.2f} | "
              f"{peak / b:.3f} | {ratio} | {warm} |")
    (args.out / "summary.json").write_text(json.dumps(
        {"|".join(map(str, k)): v for k, v in results.items()}, indent=1) + "\n")
    if failed:  # a table with rows missing is no measurement to quote
        print(f"speed_vs_public.py: error: {failed} measurement(s) failed (their errors are above); "
              "the table leaves them out", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
