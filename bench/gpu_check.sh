#!/usr/bin/env bash
# The GPU check, in one call on a machine with an NVIDIA GPU (issue 14): a fresh virtualenv
# with a CUDA build of torch, this checkout installed into it, then
#   1. the gpu-marked test: the real tune + train stages on CUDA, the ONNX export scored on CPU
#      (tests/model/test_gpu.py), and
#   2. bench 1's GPU rows (bench/training.py, RETRAIN_BENCH_DEVICES=cuda),
#   3. the train stage on Telco's default model at each train.precision (32-true, 16-mixed,
#      bf16-mixed): fit time, epochs, val AUROC, side by side (issue 24),
# and prints bench 1's table. (The gpu-marked tests include the 16-mixed train stage.) Nothing in the checkout is changed; the results go to $OUT_DIR.
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

# 3. The train stage at each precision, on the same data, in one process (same warm device).
"$VENV/bin/python" - "$OUT_DIR" <<'PY' | tee "$OUT_DIR/precision.txt" || status=$?
import copy, json, sys, tempfile, time
from pathlib import Path

from retrain.stages import prepare, train
from retrain.testing import params_in, telco_params

repo = Path.cwd()
raw = telco_params(repo)
raw["train"]["accelerator"] = "gpu"
tmp = Path(tempfile.mkdtemp(prefix="retrain-precision-"))
base = params_in(tmp, raw, repo)
prepare.run(base)
base.paths.best_params.parent.mkdir(parents=True, exist_ok=True)
base.paths.best_params.write_text(json.dumps({"params": base.model.model_dump()}))
# Imports and the CUDA context before the clock: the first precision must not pay for them.
import retrain.models.training, torch  # noqa: E401,F401
torch.zeros(1, device="cuda")
rows = {}
for precision in ("32-true", "16-mixed", "bf16-mixed"):
    params = base.model_copy(
        update={"train": base.train.model_copy(update={"precision": precision})}
    )
    began = time.perf_counter()
    result = train.run(params)
    rows[precision] = {
        "seconds": time.perf_counter() - began,
        "epochs": result.epochs_run,
        "val_auroc": result.best_score,
        "device": result.device,
    }
print("precision   fit+export s  epochs  val/auroc  vs 32-true")
for name, r in rows.items():
    ratio = rows["32-true"]["seconds"] / r["seconds"]
    print(f"{name:10}  {r['seconds']:12.1f}  {r['epochs']:6d}  {r['val_auroc']:9.4f}  {ratio:.2f}x")
(Path(sys.argv[1]) / "precision.json").write_text(json.dumps(rows, indent=2))
PY

echo
echo "== GPU check: test $( ((status == 0)) && echo passed || echo FAILED ); bench 1 GPU rows and precisions above"
echo "   (files in $OUT_DIR)"
exit "$status"
