"""The real tune and train stages on a CUDA device: the ONNX export matches the network, and a
second run gives the same weights (skipped where there is none; bench/gpu_check.sh runs it)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from retrain.data.splits import load_splits
from retrain.models.predictor import Predictor
from retrain.stages import prepare, train, tune
from tests.conftest import params_in

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.model,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]


def test_the_train_stage_trains_on_cuda_and_its_onnx_scores_on_cpu(
    tmp_path, small_params_raw, raw_csv
):
    raw = copy.deepcopy(small_params_raw)
    raw["train"]["accelerator"] = "gpu"
    params = params_in(tmp_path, raw)
    prepare.run(params)
    tune.run(params)  # the small config's 3 trials, on the GPU too
    result = train.run(params)
    card = json.loads(params.paths.model_card.read_text())
    assert result.device.startswith("cuda") and card["device"].startswith("cuda")
    # The exported model (scored by onnxruntime on the CPU) is the network trained on the GPU.
    splits = load_splits(params.paths)
    x, y = splits.matrix("test")
    with torch.no_grad():
        torch_scores = result.module(torch.as_tensor(x)).sigmoid().numpy()
    onnx_scores = Predictor(params.paths.preprocessor, params.paths.onnx_model).predict_matrix(x)
    np.testing.assert_allclose(onnx_scores, torch_scores, atol=1e-5)
    assert roc_auc_score(y, onnx_scores) > 0.8
    # deterministic=True on CUDA (torch.use_deterministic_algorithms, CUBLAS_WORKSPACE_CONFIG):
    # the same stage on the same device gives the same weights (docs/reproducibility.md).
    first = {k: v.clone() for k, v in result.module.state_dict().items()}
    again = train.run(params).module.state_dict()
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first), "a second run on CUDA differs"


def test_the_train_stage_trains_in_16_bit_mixed_precision_on_cuda(
    tmp_path, small_params_raw, raw_csv
):
    # train.precision "16-mixed": autocast and Lightning's grad scaler (the loss scaled in
    # manual_backward, unscaled before the clip in on_before_optimizer_step). The weights stay
    # float32, so the ONNX export scores on the CPU as the 32-bit model does.
    raw = copy.deepcopy(small_params_raw)
    raw["train"].update(accelerator="gpu", precision="16-mixed")
    raw["tune"]["n_trials"] = 0
    params = params_in(tmp_path, raw)
    prepare.run(params)
    tune.run(params)
    mixed = train.run(params)
    assert mixed.device.startswith("cuda")
    weights = mixed.module.state_dict()
    assert all(v.dtype != torch.float16 for v in weights.values())
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
    splits = load_splits(params.paths)
    x, y = splits.matrix("test")
    scores = Predictor(params.paths.preprocessor, params.paths.onnx_model).predict_matrix(x)
    assert roc_auc_score(y, scores) > 0.8
    # Autocast was on: the same stage in 32-bit trains other weights.
    full = params.model_copy(
        update={"train": params.train.model_copy(update={"precision": "32-true"})}
    )
    plain = train.run(full).module.state_dict()
    assert any(not torch.equal(weights[k], plain[k]) for k in plain)
