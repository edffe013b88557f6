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


def test_multiclass_slices_are_small_by_rows_or_by_any_class():
    from retrain.analysis.slices import define
    from retrain.task import MulticlassTask

    task = MulticlassTask(["a", "b", "c"])
    frame = pd.DataFrame({"g": ["x"] * 90 + ["z"] * 90})
    # x: 30 of each class; z: 85 of a, 5 of b, none of c.
    y = np.array([0, 1, 2] * 30 + [0] * 85 + [1] * 5)
    x, z = define(frame, y, ["g"], SliceRule(min_rows=50, min_class_rows=10), task)
    assert (x.class_rows, x.small) == ((30, 30, 30), False)
    assert (z.class_rows, z.small) == ((85, 5, 0), True)  # 90 rows, but too few of b and c


def test_regression_slices_are_small_by_rows_only():
    from retrain.analysis.slices import define
    from retrain.task import RegressionTask

    frame = pd.DataFrame({"g": ["x"] * 60 + ["z"] * 40})
    y = np.linspace(1.0, 2.0, 100)  # floats: no "classes" to count
    x, z = define(frame, y, ["g"], SliceRule(min_rows=50, min_class_rows=10**6), RegressionTask())
    assert (x.small, z.small) == (False, True)


def test_task_slice_metrics_rank_the_weakest_slice_by_the_gate_metric_s_direction():
    from retrain.analysis.slices import slice_metrics
    from retrain.task import RegressionTask

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"g": ["good"] * 200 + ["bad"] * 200 + ["tiny"] * 10})
    y = rng.normal(50, 10, 410)
    noise = np.r_[rng.normal(0, 1, 200), rng.normal(0, 8, 200), rng.normal(0, 50, 10)]
    out = slice_metrics(
        frame, y, y + noise, ["g"], threshold=0.5, rule=SliceRule(50, 10), task=RegressionTask()
    )
    assert out["task"] == "regression" and set(out["overall"]) == {"rmse", "mae", "r2"}
    # rmse: lower is better, so the weakest is the largest; "tiny" is worse but small.
    assert out["weakest"]["g"]["value"] == "bad" and out["weakest"]["g"]["metric"] == "rmse"
    tiny = out["slices"]["g"]["tiny"]
    assert tiny["small"] and tiny["metrics"]["rmse"] > out["weakest"]["g"]["rmse"]
    assert out["slices"]["g"]["good"]["mean_target"] == pytest.approx(y[:200].mean(), abs=1e-6)


def test_multiclass_slice_metrics_count_each_class_and_use_the_task_s_metrics():
    from scipy.special import softmax

    from retrain.analysis.slices import slice_metrics
    from retrain.task import MulticlassTask

    rng = np.random.default_rng(1)
    task = MulticlassTask(["F", "L", "M"])
    p = softmax(rng.normal(0, 2, (300, 3)), axis=1)
    y = np.array([rng.choice(3, p=row) for row in p])
    frame = pd.DataFrame({"g": rng.choice(["x", "z"], 300)})
    out = slice_metrics(frame, y, p, ["g"], threshold=0.5, rule=SliceRule(50, 10), task=task)
    assert list(out["overall"]) == list(task.metrics)
    x = out["slices"]["g"]["x"]
    assert sum(x["class_rows"].values()) == x["n"] and list(x["class_rows"]) == ["F", "L", "M"]
    assert out["weakest"]["g"]["metric"] == "log_loss"
    worst = max(("x", "z"), key=lambda v: out["slices"]["g"][v]["metrics"]["log_loss"])
    assert out["weakest"]["g"]["value"] == worst
