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
