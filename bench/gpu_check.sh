#!/usr/bin/env bash
# The CUDA path on a real GPU, in a few minutes: (1) the device tests (GradCache replays the GPU's dropout,
# tensors on cuda), (2) a short concat-mode training on the GPU with --log, (3) embedding throughput on the
# GPU(s) against the CPU (bench/gpu_throughput.py, all GPUs through the multi-process pool).
# Without a GPU it prints "no GPU" and exits 0.
#
#   bash bench/gpu_check.sh            (or `make gpu-check`)
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_BASE=<st folder> GPU_CHECK_DATA=<qa file> GPU_CHECK_STEPS=2 GPU_CHECK_TEXTS=200 \
#   GPU_CHECK_MAX_LENGTH=64 bash bench/gpu_check.sh
#     runs every step on the CPU, small: a dry run of this script (tests/docs/test_scale_docs.py does it)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
DEVICE="${GPU_CHECK_DEVICE:-cuda}"
BASE="${GPU_CHECK_BASE:-minilm}"
STEPS="${GPU_CHECK_STEPS:-20}"
TEXTS="${GPU_CHECK_TEXTS:-50000}"
MAXLEN="${GPU_CHECK_MAX_LENGTH:-256}"
DATA="${GPU_CHECK_DATA:-bundled:valuebench}"

if [ "$DEVICE" != cpu ] && ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "no GPU"
  exit 0
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false UNIVAR_PROGRESS_INTERVAL="${UNIVAR_PROGRESS_INTERVAL:-10}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export UNIVAR_CACHE_DIR="$work/cache"
if [ "$DEVICE" != cpu ]; then
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader || true
  "$PY" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.device_count(), 'GPU(s)')"
  if "$PY" -c "import pytest" 2>/dev/null; then
    echo "== 1. device tests"
    "$PY" -m pytest -q -p no:cacheprovider tests/test_device.py
  fi
fi

echo "== 2. concat training on $DEVICE ($STEPS steps x 2 epochs)"
start=$(date +%s)
"$PY" -m univar train "$DATA" --mode concat --device "$DEVICE" --base "$BASE" --lambda 5 --epochs 2 \
  --steps-per-epoch "$STEPS" --batch-size 32 --micro-batch 16 --max-length "$MAXLEN" --patience 50 \
  --out "$work/concat" --log "$work/train.jsonl"
grep -c '"event": "epoch"' "$work/train.jsonl" | sed 's/^/epoch events logged: /'
grep '"event": "train_start"' "$work/train.jsonl"
echo "concat training: $(( $(date +%s) - start )) s"

echo "== 3. embedding throughput on $DEVICE"
"$PY" bench/gpu_throughput.py --device "$DEVICE" --texts "$TEXTS" --cpu-texts "$(( TEXTS < 2000 ? TEXTS : 2000 ))"
echo "gpu check: ok"
