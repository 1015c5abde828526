#!/usr/bin/env bash
# Training speed on CUDA GPUs, srunit beside the authors' public SRUNIT code, one command:
#
#   bash benchmarks/gpu.sh PUBLIC_DIR [OUT_DIR]
#
# PUBLIC_DIR is a checkout of github.com/SeanJia/SRUNIT (for example extracted into .bench/official,
# which git ignores). Runs from a source checkout without installing (PYTHONPATH=src); needs torch
# with CUDA, numpy, pillow, pyyaml, safetensors and tqdm. At 256x256: ours for cut, srunit-official
# and srunit at batch 1, 8 and 32 in fp32, bf16 + channels-last and bf16 + channels-last +
# torch.compile; the public code at batch 1, 4 and 8; 2 alternating rounds; on a machine with several
# GPUs also our data-parallel scaling over all of them. Prints the table; JSON files go to OUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
public=${1:?usage: bash benchmarks/gpu.sh PUBLIC_DIR [OUT_DIR]}
out=${2:-bench-gpu}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
gpus=$(python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.device_count())")
processes=1
if [ "$gpus" -gt 1 ]; then processes="1,$gpus"; fi
python3 benchmarks/speed_vs_public.py --public "$public" --device cuda --size 256 --rounds 2 \
    --processes "$processes" --out "$out"
