"""Metrics per task (retrain.models.metrics) against sklearn's own functions on known inputs,
and the one definition of each metric's direction (retrain.task)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from retrain import task as task_module
from retrain.models import metrics
from retrain.models.metrics import (
    classification_metrics,
    confusion_counts,
    gain,
    interval_coverage,
    per_class,
    score,
    task_metrics,
)
from retrain.task import make_task

CLASSES = ["F", "L", "M", "VF"]


def _multiclass_case(n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.choice(4, size=n, p=[0.5, 0.3, 0.15, 0.05])
    logits = rng.standard_normal((n, 4)) + 1.5 * np.eye(4)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, p


def test_multiclass_metrics_are_sklearns():
    y, p = _multiclass_case()
    task = make_task("multiclass", classes=CLASSES)
    got = task_metrics(task, y.astype(np.float32), p)  # labels as prepare stores them
    labels = [0, 1, 2, 3]
    want = {
        "log_loss": skm.log_loss(y, p, labels=labels),
        "roc_auc_ovr": skm.roc_auc_score(y, p, multi_class="ovr", average="macro"),
        "accuracy": skm.accuracy_score(y, p.argmax(axis=1)),
        "macro_f1": skm.f1_score(y, p.argmax(axis=1), average="macro"),
        "brier": np.mean(((p - np.eye(4)[y]) ** 2).sum(axis=1)),  # summed over classes
    }
    assert list(got) == list(task.metrics)
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-6), name


def test_multiclass_per_class_and_confusion_counts_in_class_order():
    task = make_task("multiclass", classes=CLASSES)
    y = np.array([0, 0, 0, 1, 1, 2, 3])
    predicted = np.array([0, 0, 1, 1, 0, 2, 2])  # VF is never predicted
    p = np.eye(4)[predicted] * 0.7 + 0.075
    assert confusion_counts(task, y, p) == [
        [2, 1, 0, 0],
        [1, 1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 1, 0],
    ]
    table = per_class(task, y, p)
    assert list(table) == CLASSES
    assert table["F"] == {"precision": round(2 / 3, 6), "recall": round(2 / 3, 6), "support": 3}
    assert table["M"] == {"precision": 0.5, "recall": 1.0, "support": 1}
    assert table["VF"] == {"precision": 0.0, "recall": 0.0, "support": 1}


def test_macro_auc_of_a_slice_without_a_class_averages_the_present_ones():
    y, p = _multiclass_case()
    keep = y != 3
    got = score("roc_auc_ovr", y[keep], p[keep])
    want = np.mean([skm.roc_auc_score(y[keep] == c, p[keep, c]) for c in range(3)])
    assert got == pytest.approx(want, abs=1e-6)
    assert score("roc_auc_ovr", np.zeros(5), p[:5]) is None  # one class: undefined


def test_regression_metrics_are_sklearns_and_a_hand_case():
    y = np.array([3.0, 5.0, 7.0, 9.0])
    v = np.array([2.0, 5.0, 8.0, 11.0])  # errors -1, 0, 1, 2
    task = make_task("regression")
    got = task_metrics(task, y, v)
    assert list(got) == ["rmse", "mae", "r2"]
    assert got["rmse"] == pytest.approx(np.sqrt(6 / 4), abs=1e-6)
    assert got["mae"] == pytest.approx(1.0)
    assert got["r2"] == pytest.approx(skm.r2_score(y, v), abs=1e-6) and got["r2"] == 0.7
    assert interval_coverage(y, v, 1.0) == 0.75


def test_binary_metrics_keep_their_numbers_and_keys():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.3 * y + rng.uniform(size=300) * 0.7, 0, 1)
    task = make_task("binary", positive_class="Yes")
    got = task_metrics(task, y, p, threshold=0.5)
    assert got == classification_metrics(y, p, 0.5)
    assert list(got) == list(metrics.METRICS)
    assert got["roc_auc"] == round(skm.roc_auc_score(y, p), 6)
    assert got["log_loss"] == round(skm.log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)), 6)
    assert score("f1", y, p, threshold=0.5) == got["f1"]
    with pytest.raises(ValueError, match="threshold"):
        task_metrics(task, y, p)


def test_names_two_tasks_share_are_scored_by_the_predictions_shape():
    y, p = _multiclass_case(50)
    # The binary log loss of column 1 is not the multiclass one: the shape decides.
    assert score("log_loss", y, p) == round(skm.log_loss(y, p, labels=[0, 1, 2, 3]), 6)
    with pytest.raises(ValueError, match="multiclass"):
        score("roc_auc_ovr", y, p[:, 1])
    with pytest.raises(ValueError, match="not a multiclass metric"):
        score("rmse", y, p)


def test_direction_and_gain_have_one_definition_for_every_task():
    assert metrics.HIGHER_IS_BETTER is task_module.HIGHER_IS_BETTER
    assert gain("rmse", 9.5, 10.0) == 0.5  # lower is better: the challenger gains
    assert gain("r2", 0.5, 0.4) == 0.1
    assert gain("log_loss", 0.9, 0.8) == -0.1
    assert gain("roc_auc", 0.81, 0.8) == make_task("regression").gain("roc_auc", 0.81, 0.8)
