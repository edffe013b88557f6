"""The evaluate stage per task on a tiny table: the real `prepare` stage, then a tiny ONNX
model of the contract's shape (multiclass "probabilities" (rows, C), regression "prediction"
(rows, 1)) in place of `train`, then `evaluate.run`: metrics of the task for the three models,
per-class numbers, the task's plot files only, the predictions table and the results table."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrain import testing
from retrain.config import Params
from retrain.data.preprocess import Preprocessor
from retrain.models.plots import EVALUATE_PLOTS
from retrain.stages import evaluate, prepare
from tests.conftest import REPO

CLASSES = ["low", "mid", "high", "top"]


def _table(kind: str, rows: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal(rows), rng.standard_normal(rows)
    plan = rng.choice(["a", "b", "c"], rows)
    signal = x1 + 0.5 * x2 + (plan == "a")
    if kind == "regression":
        target: Any = np.round(50 + 10 * signal + rng.standard_normal(rows), 3)
    else:
        cut = np.digitize(signal + 0.3 * rng.standard_normal(rows), [-0.5, 0.7, 1.8])
        target = np.array(CLASSES, dtype=object)[cut]
    return pd.DataFrame({"x1": x1, "x2": x2, "plan": plan, "y": target})


def _params(tmp: Path, kind: str, small_params_raw: dict[str, Any]) -> Params:
    raw = copy.deepcopy(small_params_raw)
    table = tmp / "raw" / "table.csv"
    table.parent.mkdir(parents=True)
    _table(kind).to_csv(table, index=False)
    raw["paths"]["raw_data"] = str(table)
    dataset = raw["dataset"]
    dataset.update(name="tiny", target="y", task=kind, id_column=None, positive_class=None)
    dataset.update(numeric=["x1", "x2"], categorical=["plan"], pii_allow=[])
    dataset.pop("id_column")
    dataset["classes"] = CLASSES if kind == "multiclass" else None
    raw["report"]["slices"] = raw["registry"]["gate"]["slices"] = ["plan"]
    raw["prepare"]["fill_values"] = {}
    raw["paths"].setdefault("intervals", "models/model/intervals.json")  # under tmp, below
    raw["registry"]["gate"]["metric"] = "log_loss" if kind == "multiclass" else "rmse"
    return testing.params_in(tmp / "out", raw, REPO)


def _onnx(path: Path, n_features: int, kind: str) -> None:
    """A linear model with the contract's output: softmax over 4 classes, or one value."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    width = len(CLASSES) if kind == "multiclass" else 1
    weights = rng.standard_normal((n_features, width)).astype(np.float32)
    bias = np.full(width, 50.0 if kind == "regression" else 0.0, dtype=np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["z"]),
    ]
    name = "probabilities" if kind == "multiclass" else "prediction"
    nodes.append(
        helper.make_node("Softmax", ["z"], [name], axis=1)
        if kind == "multiclass"
        else helper.make_node("Identity", ["z"], [name])
    )
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, width])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)


HALF_WIDTH = 12.5  # the regression interval `train` would have fitted (paths.intervals)


def _evaluate(tmp: Path, kind: str, small_params_raw: dict[str, Any]) -> tuple[Params, dict]:
    params = _params(tmp, kind, small_params_raw)
    prepare.run(params)
    n_features = Preprocessor.load(params.paths.preprocessor).n_features
    _onnx(params.paths.onnx_model, n_features, kind)
    if kind == "regression":
        interval = {"level": 0.9, "half_width": HALF_WIDTH, "n_val": 80}
        params.paths.intervals.write_text(json.dumps(interval))
    return params, evaluate.run(params)


def _written_plots(params: Params) -> set[str]:
    keys = {k for k in type(params.paths).model_fields if k.endswith("_plot")}
    evaluate_keys = {k for plots in EVALUATE_PLOTS.values() for k in plots}
    return {k for k in keys & evaluate_keys if getattr(params.paths, k).exists()}


def test_evaluate_multiclass(tmp_path, small_params_raw):
    params, metrics = _evaluate(tmp_path, "multiclass", small_params_raw)
    assert json.loads(params.paths.metrics.read_text()) == metrics
    assert "threshold" not in metrics  # only a binary table has a decision threshold
    for model in ("tabm", "logreg", "lightgbm"):
        assert list(metrics[model]) == ["log_loss", "roc_auc_ovr", "accuracy", "macro_f1", "brier"]
        assert metrics[model]["log_loss"] < 10 and 0 <= metrics[model]["roc_auc_ovr"] <= 1
    # The baselines learn the signal: better than the prior's log loss (about 1.3 here).
    assert metrics["lightgbm"]["log_loss"] < 1.1 and metrics["logreg"]["log_loss"] < 1.1
    assert list(metrics["per_class"]) == CLASSES
    assert sum(c["support"] for c in metrics["per_class"].values()) == metrics["n_test"]
    assert _written_plots(params) == {"confusion_plot"}
    with params.paths.confusion_plot.open() as fh:
        cells = list(csv.DictReader(fh))
    assert len(cells) == metrics["n_test"]
    assert {c["actual"] for c in cells} == set(CLASSES)  # class names, not indices
    assert {c["predicted"] for c in cells} <= set(CLASSES)
    predictions = pd.read_parquet(params.paths.predictions)
    assert list(predictions.columns[:5]) == ["actual", *(f"tabm:{c}" for c in CLASSES)]
    assert predictions.shape == (metrics["n_test"], 1 + 3 * len(CLASSES))
    table = params.paths.results_table.read_text()
    assert "| Multinomial logistic regression |" in table and "roc_auc_ovr" in table
    assert "Our log_loss (lower is better)" in table


def test_evaluate_regression(tmp_path, small_params_raw):
    params, metrics = _evaluate(tmp_path, "regression", small_params_raw)
    assert "threshold" not in metrics
    assert list(metrics["tabm"]) == ["rmse", "mae", "r2", "coverage"]
    for model in ("logreg", "lightgbm"):
        assert list(metrics[model]) == ["rmse", "mae", "r2"]
    # Ridge on a linear signal with noise 1 (target sd ~13): close to the noise.
    assert metrics["logreg"]["rmse"] < 2.0 and metrics["logreg"]["r2"] > 0.95
    assert _written_plots(params) == {"residuals_plot", "predicted_vs_actual_plot"}
    predictions = pd.read_parquet(params.paths.predictions)
    assert list(predictions.columns) == ["actual", "tabm", "logreg", "lightgbm"]
    residuals = json.loads(params.paths.residuals_plot.read_text())
    versus = json.loads(params.paths.predicted_vs_actual_plot.read_text())
    assert len(residuals) == len(versus) == metrics["n_test"]
    ours = predictions["tabm"].to_numpy()
    assert [r["predicted"] for r in residuals] == pytest.approx(ours, abs=1e-6)
    residual = predictions["actual"] - predictions["tabm"]
    assert [r["residual"] for r in residuals] == pytest.approx(residual, abs=1e-5)
    assert [r["actual"] for r in versus] == pytest.approx(predictions["actual"], abs=1e-6)
    # The served interval's test coverage: the share of rows within value ± half-width.
    inside = (residual.abs() <= HALF_WIDTH).mean()
    assert metrics["tabm"]["coverage"] == pytest.approx(inside, abs=1e-6)
    assert metrics["interval"] == {"level": 0.9, "half_width": HALF_WIDTH}
    table = params.paths.results_table.read_text()
    assert "| Ridge regression |" in table and "Our rmse (lower is better)" in table
    assert (
        f"Our 90% prediction interval (value ± 12.5000, fitted on validation) covers {inside:.4f}"
        in table
    )


def test_regression_plots_sample_a_large_test_split(tmp_path, small_params_raw, monkeypatch):
    monkeypatch.setattr(evaluate, "PLOT_ROWS", 40)
    params, metrics = _evaluate(tmp_path, "regression", small_params_raw)
    residuals = json.loads(params.paths.residuals_plot.read_text())
    assert len(residuals) == 40 < metrics["n_test"]


def test_a_regression_model_without_its_interval_is_one_clear_error(tmp_path, small_params_raw):
    from retrain.errors import DataError

    params = _params(tmp_path, "regression", small_params_raw)
    prepare.run(params)
    _onnx(
        params.paths.onnx_model,
        Preprocessor.load(params.paths.preprocessor).n_features,
        "regression",
    )
    with pytest.raises(DataError, match="intervals.json: no prediction interval"):
        evaluate.run(params)
