#!/usr/bin/env bash
# GPU readiness check (issue 12.5): 8-bit LoRA r=32 q,v on a large-v2-shaped random model (20 steps, peak memory,
# samples/s), the bundled base for 50 steps on demo data, fp16 transcription; prints one JSON object on stdout.
# Needs a CUDA machine; bounded to 8 minutes. `bench/gpu_check.sh --tiny` runs the same on CPU with tiny shapes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ " $* " != *" --tiny "* ]] && ! python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: no CUDA device here (run with --tiny for the CPU smoke run)" >&2
  exit 2
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
exec timeout 480 python3 bench/gpu_check.py "$@"
