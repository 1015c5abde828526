#!/usr/bin/env bash
# Training speed on a CUDA GPU, srunit beside the authors' public SRUNIT code, one command that
# fits a short lease of a GPU machine (about 6 minutes on one H100/H200):
#
#   bash benchmarks/gpu.sh PUBLIC_DIR [OUT_DIR]
#
# PUBLIC_DIR is a checkout of github.com/SeanJia/SRUNIT (for example extracted into .bench/official,
# which git ignores). Runs from a source checkout without installing (PYTHONPATH=src); needs torch
# with CUDA, numpy, pillow, pyyaml, safetensors and tqdm. At 256x256, 20 timed steps after 5:
#   1. ours for cut, srunit-official and srunit at batch 8 and 32, in fp32 and in bf16 + channels-last,
#      against the public code at batch 1, 4 and 8 (its --reg 0 CUT path and --reg 0.001 SRUNIT path);
#   2. cut at batch 32 in bf16 + channels-last + torch.compile (the warm-up column holds the compile time);
#   3. on a machine with several GPUs, ours data-parallel over all of them (scaling).
# Each measurement prints a line as it finishes; the tables follow; JSON files go to OUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
public=${1:?usage: bash benchmarks/gpu.sh PUBLIC_DIR [OUT_DIR]}
out=${2:-bench-gpu}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ ! -f "$public/models/srunit_model.py" ]; then
  echo "gpu.sh: PUBLIC_DIR $public is not a checkout of the public SRUNIT code (no models/srunit_model.py);" \
       "extract github.com/SeanJia/SRUNIT there" >&2
  exit 2
fi
# One line, not a traceback, where python3 has no torch or torch sees no GPU.
gpus=$(python3 -c "
import sys
try:
    import torch
except ImportError as error:
    sys.exit(f'gpu.sh: {sys.executable} cannot import torch ({error}): put a Python with torch (CUDA build) '
             'first on PATH')
if not torch.cuda.is_available():
    sys.exit(f'gpu.sh: torch {torch.__version__} sees no CUDA device: this script times training on a CUDA GPU; '
             'on a CPU use benchmarks/speed_vs_public.py --device cpu')
print(torch.cuda.device_count())
")
python3 benchmarks/speed_vs_public.py --public "$public" --device cuda --size 256 --rounds 1 \
    --presets cut,srunit-official,srunit --variants fp32,bf16+cl --batch-sizes 8,32 --public-batch-sizes 1,4,8 \
    --out "$out/main"
python3 benchmarks/speed_vs_public.py --device cuda --size 256 --rounds 1 --presets cut \
    --variants bf16+cl+compile --batch-sizes 32 --out "$out/compile"
if [ "$gpus" -gt 1 ]; then
  python3 benchmarks/speed_vs_public.py --device cuda --size 256 --rounds 1 --presets cut,srunit \
      --variants bf16+cl --batch-sizes 32 --processes "1,$gpus" --out "$out/scaling"
fi
