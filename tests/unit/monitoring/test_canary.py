"""Canary evidence: each version judged on the rows it scored, once their labels arrive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.monitoring.canary import evaluate, markdown
from tests.conftest import telco_schema


def _logged(ids: list[int], versions: list[str], scores: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [str(i) for i in ids],  # the service logs ids as the client sent them
            "model_version": versions,
            "probability": scores,
            "label": [int(s >= 0.5) for s in scores],
        }
    )


def test_each_version_on_its_own_traffic_with_n_and_evidence():
    schema = telco_schema()
    n = 400
    churn = np.where(np.arange(n) % 3 == 0, "Yes", "No")
    batch = pd.DataFrame({"customer_id": np.arange(n), "churn": churn})
    version = ["v2.0.0" if i % 2 else "v1.0.0" for i in range(n)]
    # The candidate ranks perfectly; prod is right only for the first half of its rows.
    scores = [
        (0.9 if churn[i] == "Yes" else 0.1)
        if version[i] == "v2.0.0" or i < n // 2
        else (0.1 if churn[i] == "Yes" else 0.9)
        for i in range(n)
    ]
    found = evaluate(batch, _logged(list(range(n)), version, scores), schema, "v1.0.0", "v2.0.0")
    assert found is not None
    prod, cand = found["versions"]
    assert (prod["role"], prod["n"], cand["role"], cand["n"]) == ("prod", 200, "candidate", 200)
    assert cand["roc_auc"] == 1.0 and cand["accuracy"] == 1.0 and cand["evidence"] == "enough"
    assert prod["roc_auc"] < 0.6
    assert found["said"].endswith(f"; candidate {1.0 - prod['roc_auc']:+.4f}")
    assert "| v2.0.0 | candidate | 200 |" in markdown("b.csv", found)
    # A few labelled rows: the numbers come with "too little evidence", and no lead is claimed.
    few = evaluate(
        batch.head(30), _logged(list(range(n)), version, scores), schema, "v1.0.0", "v2.0.0"
    )
    assert few is not None and all(
        "too little evidence (n=15" in r["evidence"] for r in few["versions"]
    )
    assert "candidate +" not in few["said"] and "too little evidence" in few["said"]


def test_nothing_to_say_without_canary_traffic_or_labels():
    schema = telco_schema()
    batch = pd.DataFrame({"customer_id": [1, 2], "churn": ["Yes", "No"]})
    only_prod = _logged([1, 2], ["v1.0.0", "v1.0.0"], [0.9, 0.1])
    assert evaluate(batch, only_prod, schema, "v1.0.0", None) is None
    assert evaluate(batch.drop(columns=["churn"]), only_prod, schema, "v1.0.0", "v2.0.0") is None
    other_ids = _logged([7, 8], ["v2.0.0", "v1.0.0"], [0.9, 0.1])
    assert evaluate(batch, other_ids, schema, "v1.0.0", "v2.0.0") is None
    # The candidate alone (prod's rows not labelled yet) is still worth reporting.
    only_cand = _logged([1, 2], ["v2.0.0", "v2.0.0"], [0.9, 0.1])
    found = evaluate(batch, only_cand, schema, "v1.0.0", "v2.0.0")
    assert found is not None and [r["role"] for r in found["versions"]] == ["candidate"]


def _task_schema(task: str):
    from retrain.config import DatasetSchema

    classes = ["F", "L", "M"] if task == "multiclass" else None
    return DatasetSchema(
        name="t", suite="t.json", target="y", task=task, classes=classes, id_column="id",
        numeric=["x"], categorical=[],
    )  # fmt: skip


def test_multiclass_canary_judges_the_predicted_class():
    n = 300
    truth = np.array(["F", "L", "M"])[np.arange(n) % 3]
    version = np.where(np.arange(n) % 2, "v2.0.0", "v1.0.0")
    # The candidate is always right; prod only on class F.
    label = np.where((version == "v2.0.0") | (truth == "F"), truth, "M")
    logged = pd.DataFrame({"id": np.arange(n), "model_version": version, "predicted_class": label})
    batch = pd.DataFrame({"id": np.arange(n), "y": truth})
    found = evaluate(batch, logged, _task_schema("multiclass"), "v1.0.0", "v2.0.0")
    assert found is not None
    prod, cand = found["versions"]
    assert cand["accuracy"] == 1.0 and abs(prod["accuracy"] - 2 / 3) < 0.01  # F and M right
    assert "positives" not in cand and cand["evidence"] == "enough"
    assert found["said"].endswith(f"; candidate {1.0 - prod['accuracy']:+.4f}")
    assert "| v2.0.0 | candidate | 150 | 1.0000 | enough |" in markdown("b.csv", found)


def test_regression_canary_judges_the_value_lower_rmse_leads():
    n = 300
    truth = np.linspace(10, 100, n)
    version = np.where(np.arange(n) % 2, "v2.0.0", "v1.0.0")
    prediction = np.where(version == "v2.0.0", truth + 1.0, truth - 3.0)
    logged = pd.DataFrame({"id": np.arange(n), "model_version": version, "prediction": prediction})
    batch = pd.DataFrame({"id": np.arange(n), "y": truth})
    found = evaluate(batch, logged, _task_schema("regression"), "v1.0.0", "v2.0.0")
    assert found is not None
    prod, cand = found["versions"]
    assert (cand["rmse"], cand["mae"]) == (pytest.approx(1.0), pytest.approx(1.0))
    assert prod["rmse"] == pytest.approx(3.0)
    assert found["said"].endswith("; candidate +2.0000")  # 2 lower: better
    few = evaluate(batch.head(50), logged, _task_schema("regression"), "v1.0.0", "v2.0.0")
    assert few is not None and "too little evidence (n=25; needs 100 rows)" in few["said"] + str(
        few["versions"]
    )
    assert "| rmse | mae |" in markdown("b.csv", found)
