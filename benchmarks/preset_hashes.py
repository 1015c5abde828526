"""Hash what every packaged preset trains in 6 steps through the CLI: a refactoring check.

    python benchmarks/preset_hashes.py --out hashes-before.json
    ... change the code ...
    python benchmarks/preset_hashes.py --out hashes-after.json --compare hashes-before.json

Each preset trains 6 steps of `srunit train` on the same small random images (8 per domain, 40x40
crops of 32), with tiny networks, one thread and seed 0, then continues 2 more steps with `--resume`.
The SHA-256 of every file of the final checkpoint (each network's safetensors and state.pt) is
recorded. Two runs of the same code on the same machine give the same hashes; a refactoring that
keeps behaviour must too. Floating-point results differ across machines and torch versions, so
compare hashes made on one machine only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

# Tiny networks for every preset; method keys only where the method has them.
MODEL = ["--model.ngf", "4", "--model.ndf", "4", "--model.n_blocks", "2", "--model.projector_dim", "8"]
DATA = ["--data.load_size", "36", "--data.crop_size", "32", "--data.num_workers", "0"]
TRAIN = ["--train.steps", "6", "--train.device", "cpu", "--train.seed", "0", "--train.checkpoint_every", "3",
         "--train.log_every", "3", "--train.loggers", ""]
METHOD = {
    "drit": ["--method.dis_layers", "3", "--method.content_dis_layers", "0"],
    "cut-family": ["--method.num_patches", "16"],
}
NO_PATCHES = {"cyclegan", "gcgan", "drit", "stegogan", "stegogan-official"}


def model_for(preset: str) -> list[str]:
    """MODEL less what the preset's networks never read (`srunit train` refuses it; it changes no weight): DRIT's
    read ngf and ndf only, the presets without patches have no projector."""
    if preset == "drit":
        return MODEL[:4]
    if preset in NO_PATCHES:
        return MODEL[:6]
    return MODEL


def presets() -> list[str]:
    out = subprocess.run([sys.executable, "-c", "from srunit.config import preset_names; print(*preset_names())"],
                         capture_output=True, text=True, check=True)
    return out.stdout.split()


def make_data(root: Path) -> None:
    rng = np.random.RandomState(0)
    for domain in ("trainA", "trainB"):
        (root / domain).mkdir(parents=True)
        for i in range(8):
            pixels = (rng.rand(40, 40, 3) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / domain / f"{i}.png")


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _run(cmd: list[str], env: dict[str, str], preset: str) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        sys.exit(f"preset_hashes.py: error: preset {preset!r}: `srunit {' '.join(cmd[3:5])}` failed "
                 f"(status {done.returncode}): {last}")


def run_preset(preset: str, data: Path, runs: Path) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    method = METHOD["drit"] if preset == "drit" else [] if preset in NO_PATCHES else METHOD["cut-family"]
    name = Path(preset).stem  # a preset file's run is named by its stem
    cmd = [sys.executable, "-m", "srunit", "train", "--preset", preset, "--no-progress", "--data.root", str(data),
           "--train.runs_dir", str(runs), "--train.name", name, *model_for(preset), *DATA, *TRAIN, *method]
    _run(cmd, env, preset)
    _run([sys.executable, "-m", "srunit", "train", "--resume", str(runs / name), "--no-progress",
          "--train.steps", "8"], env, preset)
    return digest(runs / name / "checkpoints" / "latest")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="JSON file of the hashes")
    p.add_argument("--compare", type=Path, help="an earlier --out: report every preset whose files differ")
    p.add_argument("--presets", help="comma-separated names or preset files (default: every packaged preset)")
    args = p.parse_args()
    before = None
    if args.compare:  # read before the minutes of training, not after
        try:
            before = json.loads(args.compare.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as error:
            p.error(f"--compare {args.compare}: cannot be read as JSON ({error}); give a file an earlier --out wrote")
        if not isinstance(before, dict):
            p.error(f"--compare {args.compare}: not a file of hashes (a JSON object of preset names); "
                    "give a file an earlier --out wrote")
    names = args.presets.split(",") if args.presets else presets()
    hashes = {}
    with tempfile.TemporaryDirectory() as tmp:
        make_data(Path(tmp) / "data")
        for name in names:
            hashes[name] = run_preset(name, Path(tmp) / "data", Path(tmp) / "runs")
            print(f"{name}: {hashes[name].get('G.safetensors', '?')[:16]}", flush=True)
    args.out.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
    if before is not None:
        differ = [n for n in names if before.get(n) != hashes[n]]
        print(f"{len(names) - len(differ)} of {len(names)} presets hash the same" +
              (f"; differ: {', '.join(differ)}" if differ else ""))
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
