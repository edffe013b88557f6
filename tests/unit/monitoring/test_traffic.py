"""What the monitor compares on traffic for a non-binary task: the served version's own
predictions of the logged rows, in the task's shape, whatever columns the log keeps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from retrain.config import DatasetSchema
from retrain.data.preprocess import Preprocessor
from retrain.models.predictor import Predictor
from retrain.monitoring.traffic import served_predictions

SCHEMA = DatasetSchema(
    name="wage",
    suite=Path("s.json"),
    target="wage",
    task="regression",
    numeric=["age"],
    categorical=["site"],
)


def _regression_model(tmp_path: Path, table: pd.DataFrame) -> Predictor:
    """A one-layer model with the regression contract's ONNX output ("prediction", rows x 1)."""
    pre = Preprocessor.fit(table, ["age"], ["site"])
    pre.save(tmp_path / "preprocessor.json")
    torch.manual_seed(0)
    net = torch.nn.Linear(pre.n_features, 1).eval()
    with torch.no_grad():  # value = 100 + 20 x the standardised age (its first feature)
        net.weight.zero_()
        net.weight[0, 0], net.bias[0] = 20.0, 100.0
    torch.onnx.export(
        net,
        (torch.zeros(2, pre.n_features),),
        str(tmp_path / "model.onnx"),
        input_names=["features"],
        output_names=["prediction"],
        dynamic_axes={"features": {0: "rows"}, "prediction": {0: "rows"}},
        dynamo=False,
    )
    return Predictor(tmp_path / "preprocessor.json", tmp_path / "model.onnx")


def test_regression_traffic_is_compared_on_the_versions_predicted_values(tmp_path):
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"age": rng.uniform(20, 60, 50), "site": rng.choice(["a", "b"], 50)})
    predictor = _regression_model(tmp_path, table)
    # A regression log has no `probability` column (that is the binary log's).
    logged = table.assign(model_version="v1.0.0", prediction=0.0)
    values = served_predictions(logged, table, predictor, SCHEMA)
    assert values.shape == (50,)
    np.testing.assert_array_equal(values, predictor.predict_proba(table))
    assert np.unique(values).size > 1  # the model's values, not a column of the log


def test_binary_traffic_keeps_the_logged_scores(tmp_path):
    binary = SCHEMA.model_copy(update={"task": "binary", "positive_class": "Yes"})
    logged = pd.DataFrame({"age": [30.0, 40.0], "site": ["a", "b"], "probability": [0.2, 0.9]})
    np.testing.assert_array_equal(
        served_predictions(logged, logged, None, binary), np.array([0.2, 0.9])
    )


def test_a_regression_batch_is_checked_through_the_workspace_model(tmp_path):
    """batch_drift, what the drift stage and the monitor run: the raw batch cleaned, scored
    by the model in the regression contract's shape, its target compared as numbers."""
    from retrain.data.clean import TARGET
    from retrain.monitoring.drift import batch_drift
    from tests.conftest import params_in as params_under
    from tests.conftest import telco_params

    raw = telco_params()
    raw["dataset"] = {
        "name": "wage",
        "suite": raw["dataset"]["suite"],
        "target": "wage",
        "task": "regression",
        "numeric": ["age"],
        "categorical": ["site"],
    }
    raw["prepare"]["fill_values"] = {}
    raw["report"]["slices"], raw["registry"]["gate"]["slices"] = [], []
    raw["registry"]["gate"]["metric"] = "rmse"
    params = params_under(tmp_path, raw)
    rng = np.random.default_rng(4)
    train = pd.DataFrame({"age": rng.uniform(20, 60, 300), "site": rng.choice(["a", "b"], 300)})
    train[TARGET] = 40 + 2.0 * train["age"] + rng.normal(0, 5, 300)
    params.paths.train.parent.mkdir(parents=True)
    train.to_parquet(params.paths.train)
    model = _regression_model(tmp_path, train.drop(columns=[TARGET]))
    params.paths.preprocessor.write_bytes((tmp_path / "preprocessor.json").read_bytes())
    params.paths.onnx_model.parent.mkdir(parents=True)
    params.paths.onnx_model.write_bytes((tmp_path / "model.onnx").read_bytes())
    # Older workers: every age +15, wages +30 (as text in a CSV: clean makes them numbers).
    batch = pd.DataFrame({"age": rng.uniform(35, 75, 200), "site": rng.choice(["a", "b"], 200)})
    batch["wage"] = (70 + 2.0 * batch["age"] + rng.normal(0, 5, 200)).astype(str)
    summary = batch_drift(batch, params)
    assert summary["prediction"]["column"] == "predicted value"
    assert summary["prediction"]["drifted"]  # the model's values follow the older ages
    assert summary["target"]["column"] == "wage" and summary["target"]["method"] == "wasserstein"
    assert summary["target"]["drifted"] and summary["drifted_features"] == ["age"]
    assert model.predict_proba(batch).shape == (200,)
