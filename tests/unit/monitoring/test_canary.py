"""Canary evidence: each version judged on the rows it scored, once their labels arrive."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

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


def _schema(task: str) -> Any:
    from pathlib import Path

    from retrain.config import DatasetSchema

    extra = {"classes": ["F", "L", "M", "VF"]} if task == "multiclass" else {}
    return DatasetSchema(
        name="t",
        suite=Path("s.json"),
        target="y",
        task=task,
        id_column="id",
        numeric=["x"],
        categorical=[],
        **extra,
    )


def test_multiclass_versions_are_judged_by_the_accuracy_of_their_predicted_class():
    n = 400
    truth = np.array(["F", "L", "M", "VF"])[np.arange(n) % 4]
    version = np.where(np.arange(n) % 2 == 1, "v2.0.0", "v1.0.0")
    # The candidate names every class right; prod only the rows whose class is F.
    predicted = np.where((version == "v2.0.0") | (truth == "F"), truth, "L")
    logged = pd.DataFrame(
        {"id": np.arange(n).astype(str), "model_version": version, "predicted_class": predicted}
    )
    batch = pd.DataFrame({"id": np.arange(n), "y": truth})
    found = evaluate(batch, logged, _schema("multiclass"), "v1.0.0", "v2.0.0")
    assert found is not None
    prod, cand = found["versions"]
    assert cand["accuracy"] == 1.0 and cand["evidence"] == "enough"
    assert prod["accuracy"] == 0.5 and prod["classes"] == 2  # its rows (even ids): F and M
    assert found["said"].endswith("; candidate +0.5000")
    table = markdown("b.csv", found, "multiclass")
    assert "| version | role | n | classes | accuracy | evidence |" in table
    assert "| v2.0.0 | candidate | 200 | 2 | 1.0000 | enough |" in table
    assert "roc_auc" not in table and "positives" not in table


def test_regression_versions_are_judged_by_their_mean_absolute_error():
    n = 300
    truth = np.linspace(50, 150, n)
    version = np.where(np.arange(n) < 150, "v1.0.0", "v2.0.0")
    error = np.where(version == "v1.0.0", 10.0, 4.0)  # prod is 10 off, the candidate 4
    logged = pd.DataFrame(
        {"id": np.arange(n).astype(str), "model_version": version, "prediction": truth + error}
    )
    batch = pd.DataFrame({"id": np.arange(n), "y": truth.astype(str)})  # as read from a CSV
    found = evaluate(batch, logged, _schema("regression"), "v1.0.0", "v2.0.0")
    assert found is not None
    prod, cand = found["versions"]
    assert prod["mae"] == 10.0 and cand["mae"] == 4.0
    assert all(r["evidence"] == "enough" for r in found["versions"])
    # Lower is better: the candidate leads by 6, written as a gain.
    assert found["said"] == (
        "canary: prod v1.0.0 mae 10.0000 (n=150) vs candidate v2.0.0 mae 4.0000 (n=150); "
        "candidate +6.0000"
    )
    assert "| v1.0.0 | prod | 150 | 10.0000 | enough |" in markdown("b.csv", found, "regression")
