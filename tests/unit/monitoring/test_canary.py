"""Canary evidence: each version judged on the rows it scored, once their labels arrive."""

from __future__ import annotations

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
