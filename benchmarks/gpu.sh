#!/usr/bin/env bash
# Training-step throughput of CUT and SRUNIT on one CUDA GPU, as a table and JSON files.
#
#   bash benchmarks/gpu.sh [OUT_DIR]
#
# Runs from a source checkout without installing (PYTHONPATH=src); needs torch with CUDA,
# numpy, pillow, pyyaml, safetensors and tqdm. Each measurement is a fresh process, 5 warm-up
# steps excluded, 20 timed steps, 256x256 images. Compare with the public code on one H200:
# CUT 10.0 img/s and SRUNIT 8.0 img/s at batch 1, 32.3 and 26.7 img/s at batch 4.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench-gpu}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())"
for preset in cut srunit-official srunit; do
  for batch in 1 4 8; do
    for precision in fp32 bf16; do
      python3 -m srunit.cli.main bench speed --preset "$preset" --size 256 --batch-size "$batch" --steps 20 --warmup 5 \
        --device cuda --train.precision "$precision" --json "$out/$preset-b$batch-$precision.json" | tail -n 1
    done
  done
done
python3 - "$out" <<'PY'
import json, pathlib, sys
rows = [json.loads(p.read_text()) for p in sorted(pathlib.Path(sys.argv[1]).glob("*.json"))]
print("| preset | batch | precision | img/s | peak CUDA GiB | device |")
print("|---|---|---|---|---|---|")
for r in sorted(rows, key=lambda r: (r["preset"], r["batch_size"], r["precision"])):
    print(f"| {r['preset']} | {r['batch_size']} | {r['precision']} | {r['images_per_s']:.1f} "
          f"| {r['peak_memory_gib']:.2f} | {r['device_name']} |")
PY
