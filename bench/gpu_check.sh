#!/usr/bin/env bash
# The GPU check, in one call on a machine with an NVIDIA GPU (issue 14): a fresh virtualenv
# with a CUDA build of torch, this checkout installed into it, then
#   1. the gpu-marked test: the real tune + train stages on CUDA, the ONNX export scored on CPU
#      (tests/model/test_gpu.py), and
#   2. bench 1's GPU rows (bench/training.py, RETRAIN_BENCH_DEVICES=cuda),
# and prints bench 1's table. Nothing in the checkout is changed; the results go to $OUT_DIR.
#
#   bash bench/gpu_check.sh                 # ~5-10 min, most of it the torch download
#   QUICK=1 bash bench/gpu_check.sh         # bench 1 at smoke sizes (seconds)
#
# Env: VENV (default /tmp/retrain-gpu-venv), OUT_DIR (default /tmp/retrain-gpu-check),
# TORCH_SPEC (default the pyproject range; PyPI's Linux x86_64 torch wheels are CUDA builds),
# TORCH_INDEX (e.g. https://download.pytorch.org/whl/cu128 for another CUDA version).
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=${VENV:-/tmp/retrain-gpu-venv}
OUT_DIR=${OUT_DIR:-/tmp/retrain-gpu-check}
TORCH_SPEC=${TORCH_SPEC:-torch>=2.4,<3}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
mkdir -p "$OUT_DIR"

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
if [[ -n "${TORCH_INDEX:-}" ]]; then
  "$VENV/bin/pip" install -q "$TORCH_SPEC" --index-url "$TORCH_INDEX"
else
  "$VENV/bin/pip" install -q "$TORCH_SPEC"
fi
# The project and its test tools; pip keeps the CUDA torch (it satisfies the range).
"$VENV/bin/pip" install -q -e ".[dev]"
"$VENV/bin/python" - <<'PY'
import torch
assert torch.cuda.is_available(), f"torch {torch.__version__} sees no CUDA device"
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
PY

export GX_ANALYTICS_ENABLED=false DO_NOT_TRACK=1 PATH="$VENV/bin:$PATH"
if [[ ! -f data/raw/telco_churn.csv ]]; then
  retrain data fetch
fi

status=0
"$VENV/bin/python" -m pytest tests/model/test_gpu.py -m gpu -q -rs -p no:cacheprovider \
  | tee "$OUT_DIR/test_gpu.txt" || status=$?
if grep -q "skipped" "$OUT_DIR/test_gpu.txt" && ! grep -q "passed" "$OUT_DIR/test_gpu.txt"; then
  echo "the GPU test was skipped: no CUDA device seen by torch" >&2
  status=1
fi

RETRAIN_BENCH_DEVICES=cuda "$VENV/bin/python" -m bench.training ${QUICK:+--quick} \
  --json "$OUT_DIR/bench1_gpu.json" | tee "$OUT_DIR/bench1_gpu.txt" || status=$?

echo
echo "== GPU check: test $( ((status == 0)) && echo passed || echo FAILED ); bench 1 GPU rows above"
echo "   (files in $OUT_DIR)"
exit "$status"
