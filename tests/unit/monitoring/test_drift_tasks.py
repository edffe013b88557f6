"""Prediction and target drift of the right kind for each task (issue 26), on a few hundred
synthetic rows through Evidently itself: a multiclass model's predicted classes and labels as
class distributions, a regression model's predicted values and targets as numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain.config import DatasetSchema, DriftParams
from retrain.data.clean import TARGET
from retrain.monitoring.drift import compute_drift, gate, labelled

CLASSES = ["F", "L", "M", "VF"]
MULTICLASS = DatasetSchema(
    name="hpc",
    suite=Path("s.json"),
    target="class",
    task="multiclass",
    classes=CLASSES,
    numeric=["x"],
    categorical=["site"],
)
REGRESSION = DatasetSchema(
    name="wage",
    suite=Path("s.json"),
    target="wage",
    task="regression",
    numeric=["x"],
    categorical=["site"],
)
CFG = DriftParams(num_threshold=0.3)  # the feature noise of 300 rows stays under 0.3


def _features(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": rng.normal(0, 1, n), "site": rng.choice(["a", "b"], n)})


def _probabilities(rng: np.random.Generator, n: int, share: list[float]) -> np.ndarray:
    """(n, 4) probability rows whose most probable class follows `share`."""
    top = rng.choice(len(CLASSES), n, p=share)
    p = rng.uniform(0, 0.2, (n, len(CLASSES)))
    p[np.arange(n), top] += 1.0
    return p / p.sum(axis=1, keepdims=True)


def _multiclass(shift: bool) -> dict:
    rng = np.random.default_rng(1)
    calm, moved = [0.5, 0.3, 0.15, 0.05], [0.1, 0.2, 0.3, 0.4]
    ref, cur = _features(rng, 400), _features(rng, 300)
    ref["class"] = rng.choice(CLASSES, 400, p=calm)
    cur["class"] = rng.choice(CLASSES, 300, p=moved if shift else calm)
    report = compute_drift(
        ref,
        cur,
        MULTICLASS,
        CFG,
        reference_scores=_probabilities(rng, 400, calm),
        current_scores=_probabilities(rng, 300, moved if shift else calm),
    )
    return {**report.to_dict(), "gate": gate(report, CFG).to_dict()}


def _regression(shift: float) -> dict:
    rng = np.random.default_rng(2)
    ref, cur = _features(rng, 400), _features(rng, 300)
    ref["wage"] = rng.normal(110, 40, 400)
    cur["wage"] = rng.normal(110 + shift, 40, 300)
    report = compute_drift(
        ref,
        cur,
        REGRESSION,
        CFG,
        reference_scores=rng.normal(110, 30, 400),
        current_scores=rng.normal(110 + shift, 30, 300),
    )
    return {**report.to_dict(), "gate": gate(report, CFG).to_dict()}


def test_multiclass_compares_predicted_classes_and_labels_as_class_distributions():
    moved = _multiclass(shift=True)
    prediction, target = moved["prediction"], moved["target"]
    assert prediction["column"] == "predicted class" and prediction["kind"] == "prediction"
    assert prediction["method"] == "jensenshannon" and prediction["drifted"]
    assert prediction["threshold"] == CFG.prediction_cat_threshold
    assert target["column"] == "class" and target["method"] == "jensenshannon"
    assert target["drifted"]
    # Neither is counted as a feature: the share of drifted features is the features' own.
    assert set(moved["features"]) == {"x", "site"} and moved["drifted_features"] == []
    assert moved["gate"]["tripped"]
    assert any(r.startswith("prediction drift: jensenshannon") for r in moved["gate"]["reasons"])
    assert any(r.startswith("target drift: jensenshannon") for r in moved["gate"]["reasons"])


def test_multiclass_calm_batch_does_not_trip():
    calm = _multiclass(shift=False)
    assert not calm["prediction"]["drifted"] and not calm["target"]["drifted"]
    assert calm["gate"] == {"tripped": False, "reasons": []}


def test_regression_compares_predicted_values_and_targets_as_numbers():
    moved = _regression(shift=40.0)
    prediction, target = moved["prediction"], moved["target"]
    assert prediction["column"] == "predicted value"
    assert prediction["method"] == CFG.prediction_method == "wasserstein"
    assert prediction["drifted"] and prediction["score"] > CFG.prediction_threshold
    # A numeric stattest on the target, not the labels' Jensen-Shannon of the binary task.
    assert target["method"] == CFG.target_num_method == "wasserstein"
    assert target["threshold"] == CFG.target_num_threshold and target["drifted"]
    assert set(moved["features"]) == {"x", "site"}
    assert moved["gate"]["tripped"] and len(moved["gate"]["reasons"]) == 2


def test_regression_calm_batch_does_not_trip():
    calm = _regression(shift=0.0)
    assert not calm["prediction"]["drifted"] and not calm["target"]["drifted"]
    assert calm["prediction"]["score"] < CFG.prediction_threshold
    assert not calm["gate"]["tripped"]


def test_the_numeric_target_method_is_the_users_choice():
    rng = np.random.default_rng(3)
    ref, cur = _features(rng, 300), _features(rng, 300)
    ref["wage"], cur["wage"] = rng.normal(0, 1, 300), rng.normal(0.5, 1, 300)
    cfg = CFG.model_copy(update={"target_num_method": "ks", "target_num_threshold": 0.05})
    report = compute_drift(ref, cur, REGRESSION, cfg)
    assert report.target is not None and report.target.method == "ks"
    assert report.target.drifted and report.target.score < 0.05  # a p-value: drifted below


def test_labelled_names_a_multiclass_target_by_its_class():
    cleaned = pd.DataFrame({"x": [0.0, 1.0, 2.0], TARGET: [3, 0, 1]})
    assert labelled(cleaned, MULTICLASS)["class"].tolist() == ["VF", "F", "L"]
    wage = pd.DataFrame({"x": [0.0], TARGET: [81.5]})
    assert labelled(wage, REGRESSION)["wage"].tolist() == [81.5]


@pytest.mark.parametrize("schema", [MULTICLASS, REGRESSION])
def test_a_feature_named_like_the_prediction_column_is_refused(schema):
    name = "predicted class" if schema is MULTICLASS else "predicted value"
    clash = schema.model_copy(update={"numeric": ["x", name]})
    frame = pd.DataFrame({"x": [0.0, 1.0], name: [1.0, 2.0], "site": ["a", "b"]})
    with pytest.raises(ValueError, match=name):
        compute_drift(frame, frame, clash, CFG)
