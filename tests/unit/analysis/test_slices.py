"""Slice metrics: every row in exactly one slice per column, metrics equal to the subset's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.analysis.slices import MISSING, SliceRule, slice_metrics
from retrain.errors import DataError
from retrain.models.metrics import classification_metrics

RULE = SliceRule(min_rows=30)


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = 1000
    frame = pd.DataFrame(
        {
            "contract": rng.choice(["Month-to-month", "One year", "Two year", None], n),
            "senior_citizen": rng.integers(0, 2, n).astype(float),
            "tiny": ["rare"] * 5 + ["common"] * (n - 5),
        }
    )
    y = (rng.uniform(size=n) < 0.3).astype(int)
    y[:5] = 1  # the 5 "rare" rows hold one class only
    p = np.clip(0.3 + 0.4 * (y - 0.3) + rng.normal(0, 0.2, n), 0.01, 0.99)
    return frame, y, p


def test_slice_counts_add_up_to_the_overall_counts(table):
    frame, y, p = table
    result = slice_metrics(
        frame, y, p, ["contract", "senior_citizen", "tiny"], threshold=0.5, rule=RULE
    )
    assert (result["n"], result["positives"]) == (len(y), int(y.sum()))
    for column, values in result["slices"].items():
        assert sum(v["n"] for v in values.values()) == result["n"], column
        assert sum(v["positives"] for v in values.values()) == result["positives"], column
    assert set(result["slices"]["contract"]) == {"Month-to-month", "One year", "Two year", MISSING}
    assert set(result["slices"]["senior_citizen"]) == {"0", "1"}  # not "0.0"/"1.0"


def test_slice_metrics_are_the_metrics_of_the_subset(table):
    frame, y, p = table
    result = slice_metrics(frame, y, p, ["contract", "tiny"], threshold=0.5, rule=RULE)
    mask = (frame["contract"] == "One year").to_numpy()
    expected = classification_metrics(y[mask], p[mask], 0.5)
    assert result["slices"]["contract"]["One year"]["metrics"] == expected
    assert result["overall"] == classification_metrics(y, p, 0.5)
    rare = result["slices"]["tiny"]["rare"]
    assert rare["small"] and rare["metrics"] is None  # one class: no made-up ROC AUC
    judged = {
        v: e["metrics"]["roc_auc"] for v, e in result["slices"]["contract"].items() if e["metrics"]
    }
    assert result["weakest"]["contract"]["value"] == min(judged, key=judged.__getitem__)
    assert "tiny" not in result["weakest"] or result["weakest"]["tiny"]["value"] == "common"


def test_a_numeric_column_is_not_a_slice(table):
    frame, y, p = table
    frame = frame.assign(score=np.arange(len(y)))
    with pytest.raises(DataError, match="'score' has 1000 distinct values"):
        slice_metrics(frame, y, p, ["score"], threshold=0.5, rule=RULE)
