"""Time training steps of the authors' public SRUNIT code in-process, the way `srunit bench speed` times ours.

    python benchmarks/public_speed.py --code DIR --preset cut|srunit-official --size 256 --batch-size 1 \
        --steps 20 --warmup 5 --device cpu|cuda --json OUT.json

DIR is a checkout of github.com/SeanJia/SRUNIT (not part of this repository). Its model is built
from its own option parser with its defaults (`--model srunit`; `--reg 0` gives its CUT path,
`--reg 0.001` its SRUNIT path, the loss active from the first step) and trained on random images
through `set_input` + `optimize_parameters`, the calls its train.py makes; nothing of it is
modified. Where torchvision cannot be imported (the CPU wheel of this project's torch), an empty
stand-in module is registered: the public code imports torchvision only for data loading, which is
not used here.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import types
from pathlib import Path

import torch

# Our preset -> the public code's flags for the same method.
PUBLIC_FLAGS = {"cut": ["--reg", "0"], "srunit-official": ["--reg", "0.001", "--reg_noise", "0.001"]}


def _torchvision_stand_in() -> None:
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - any failure (missing, or a build that does not load beside torch)
        for name in ("torchvision", "torchvision.transforms"):
            sys.modules[name] = types.ModuleType(name)
        sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--code", required=True, type=Path, help="checkout of the public SRUNIT code")
    p.add_argument("--preset", choices=list(PUBLIC_FLAGS), default="cut")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", type=Path)
    args = p.parse_args()

    code = args.code.resolve()
    if not (code / "models" / "srunit_model.py").is_file():
        p.error(f"--code {code} is not a checkout of the public SRUNIT code (no models/srunit_model.py)")
    sys.path.insert(0, str(code))
    _torchvision_stand_in()
    from models import create_model
    from options.train_options import TrainOptions

    with tempfile.TemporaryDirectory() as tmp:
        sys.argv = ["train.py", "--dataroot", tmp, "--name", "bench", "--checkpoints_dir", tmp,
                    "--gpu_ids", "0" if args.device == "cuda" else "-1", "--model", "srunit",
                    "--batch_size", str(args.batch_size), "--load_size", str(args.size),
                    "--crop_size", str(args.size), "--inact_epochs", "0", *PUBLIC_FLAGS[args.preset]]
        opt = TrainOptions().parse()
        model = create_model(opt)
        gen = torch.Generator().manual_seed(0)
        data = {k: torch.rand(args.batch_size, 3, args.size, args.size, generator=gen) * 2 - 1 for k in ("A", "B")}
        data.update(A_paths=["a.png"] * args.batch_size, B_paths=["b.png"] * args.batch_size)
        model.data_dependent_initialize(data)
        model.setup(opt)
        model.parallelize()

        def sync() -> None:
            if args.device == "cuda":
                torch.cuda.synchronize()

        epoch = 1  # past --inact_epochs 0: the robustness loss is active, as `srunit bench speed` times ours
        for _ in range(args.warmup):
            model.set_input(data)
            model.optimize_parameters(epoch)
        sync()
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(args.steps):
            model.set_input(data)
            model.optimize_parameters(epoch)
        sync()
        elapsed = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated() / 2**30 if args.device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    result = {
        "code": "public", "preset": args.preset, "size": args.size, "batch_size": args.batch_size,
        "device": args.device, "threads": torch.get_num_threads(), "steps": args.steps, "warmup": args.warmup,
        "steps_per_s": args.steps / elapsed, "images_per_s": args.steps * args.batch_size / elapsed,
        "peak_memory_gib": peak, "torch": torch.__version__,
        "device_name": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
    }
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
