"""Metrics of every task and the curves behind the DVC plots: the one definition of each
metric, used by evaluate, the report (overall and per slice) and the promotion gate alike.

A prediction has the shape `retrain.task` promises: binary (rows,) P(positive); multiclass
(rows, classes) probabilities in `dataset.classes` order; regression (rows,) the value. Labels
`y` are the model's target (`retrain.data.clean.targets`): 0/1, the class index, the value.
`score` tells a multiclass prediction from the others by its shape, so a name two tasks share
(accuracy, log_loss, brier) is scored the right way for each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn import metrics as skm

from retrain.task import HIGHER_IS_BETTER, BinaryTask, Task

__all__ = ["HIGHER_IS_BETTER", "METRICS", "THRESHOLD_FREE", "gain", "score", "task_metrics"]

# Binary: scored from the probabilities alone, comparable between models with different
# thresholds; and every metric of classification_metrics in table order (retrain.task's).
THRESHOLD_FREE = BinaryTask.gate_metrics
METRICS = BinaryTask.metrics
_NEED_BOTH_CLASSES = {"roc_auc", "pr_auc"}
EPS = 1e-7  # probabilities are clipped to [EPS, 1 - EPS] before a log loss


def _clipped(p: np.ndarray) -> np.ndarray:
    return np.clip(p, EPS, 1 - EPS)


_SCORES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "roc_auc": lambda y, p: float(skm.roc_auc_score(y, p)),
    "pr_auc": lambda y, p: float(skm.average_precision_score(y, p)),
    "log_loss": lambda y, p: float(skm.log_loss(y, _clipped(p), labels=[0, 1])),
    "brier": lambda y, p: float(skm.brier_score_loss(y, p)),
}


def _labels(p: np.ndarray) -> list[int]:
    return list(range(p.shape[1]))


def _ovr_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """Macro one-vs-rest ROC AUC over the classes present in `y` (sklearn's number when every
    class is present; a slice missing a rare class still gets the mean over the others)."""
    present = [c for c in _labels(p) if (y == c).any()]
    if len(present) < 2:
        return None
    return float(np.mean([skm.roc_auc_score(y == c, p[:, c]) for c in present]))


def _rows_sum_to_one(p: np.ndarray) -> np.ndarray:
    """`p` with each row divided by its sum: a float32 softmax (the ONNX model's) sums to 1
    only within ~1e-7, which sklearn warns about (tolerance ~1e-8)."""
    return p / p.sum(axis=1, keepdims=True)


_MULTICLASS: dict[str, Callable[[np.ndarray, np.ndarray], float | None]] = {
    "log_loss": lambda y, p: float(
        skm.log_loss(y, _rows_sum_to_one(np.clip(p, EPS, 1)), labels=_labels(p))
    ),
    "roc_auc_ovr": _ovr_auc,
    "accuracy": lambda y, p: float(skm.accuracy_score(y, p.argmax(axis=1))),
    "macro_f1": lambda y, p: float(
        skm.f1_score(y, p.argmax(axis=1), labels=_labels(p), average="macro", zero_division=0)
    ),
    # sklearn's multiclass Brier: the mean over rows of the summed squared error (0 to 2).
    "brier": lambda y, p: float(skm.brier_score_loss(y, _rows_sum_to_one(p), labels=_labels(p))),
}
_REGRESSION: dict[str, Callable[[np.ndarray, np.ndarray], float | None]] = {
    "rmse": lambda y, v: float(np.sqrt(skm.mean_squared_error(y, v))),
    "mae": lambda y, v: float(skm.mean_absolute_error(y, v)),
    "r2": lambda y, v: float(skm.r2_score(y, v)) if len(y) > 1 else None,
}
_BINARY_THRESHOLD = ("accuracy", "precision", "recall", "f1")
KNOWN = sorted({*_SCORES, *_MULTICLASS, *_REGRESSION, *_BINARY_THRESHOLD})


def score(
    metric: str, y: np.ndarray, p: np.ndarray, threshold: float | None = None
) -> float | None:
    """`metric` of prediction `p` for labels `y`, rounded to 6 digits; None where it is
    undefined (no rows; one class only for the ranking metrics; R² of one row).

    A 2-D `p` is a multiclass prediction, a 1-D one binary or regression (the metric's name
    tells which). Binary accuracy, precision, recall and F1 need the decision `threshold`.
    """
    if metric not in KNOWN:
        raise ValueError(f"unknown metric {metric!r}; known: {KNOWN}")
    y, p = np.asarray(y), np.asarray(p)
    if len(y) == 0:
        return None
    if p.ndim == 2:
        if metric not in _MULTICLASS:
            raise ValueError(f"{metric!r} is not a multiclass metric; those: {[*_MULTICLASS]}")
        value = _MULTICLASS[metric](y.astype(int), p)
    elif metric in _REGRESSION:
        value = _REGRESSION[metric](y, p)
    elif metric in _BINARY_THRESHOLD:
        if threshold is None:
            raise ValueError(f"binary {metric!r} needs a decision threshold")
        value = _threshold_metrics(y, p, threshold)[metric]
    elif metric in _NEED_BOTH_CLASSES and len(np.unique(y)) < 2:
        return None
    elif metric not in _SCORES:
        raise ValueError(f"{metric!r} needs a (rows, classes) multiclass prediction")
    else:
        value = _SCORES[metric](y, p)
    return None if value is None else round(value, 6)


def gain(metric: str, challenger: float, champion: float) -> float:
    """How much better `challenger` is than `champion` (positive) or worse (negative),
    whatever the metric's direction (retrain.task's one definition)."""
    return Task.gain(metric, challenger, champion)


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The score threshold with the highest F1 (chosen on validation, applied to test)."""
    precision, recall, thresholds = skm.precision_recall_curve(y, p)
    f1 = 2 * precision * recall / np.clip(precision + recall, 1e-12, None)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def _threshold_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    pred = (p >= threshold).astype(int)
    return {
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
    }


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Every binary metric of METRICS (labels of both classes required), rounded to 6 digits."""
    if len(np.unique(y)) < 2:
        raise ValueError("classification metrics need labels of both classes")
    values: dict[str, float] = {}
    for m in THRESHOLD_FREE:
        value = score(m, y, p)
        assert value is not None  # both classes are present
        values[m] = value
    values |= {m: round(v, 6) for m, v in _threshold_metrics(y, p, threshold).items()}
    return {m: values[m] for m in METRICS}


def task_metrics(
    task: Task, y: np.ndarray, p: np.ndarray, threshold: float | None = None
) -> dict[str, float | None]:
    """The task's whole table (`task.metrics`, in order), rounded to 6 digits.

    Binary: `classification_metrics` at `threshold` (required). Multiclass and regression
    have no threshold; a metric undefined on these rows (see `score`) is None.
    """
    if isinstance(task, BinaryTask):
        if threshold is None:
            raise ValueError("binary metrics need a decision threshold")
        return dict(classification_metrics(y, p, threshold))
    return {m: score(m, y, p) for m in task.metrics}


def per_class(task: Task, y: np.ndarray, p: np.ndarray) -> dict[str, dict[str, Any]]:
    """Multiclass: each class's precision, recall and test rows (support), keyed by the class's
    name in `task.classes` order; the predicted class is the most probable one."""
    labels = list(range(len(task.classes)))
    predicted = p.argmax(axis=1)
    y = np.asarray(y).astype(int)
    precision, recall, _, support = skm.precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0
    )
    return {
        str(c): {
            "precision": round(float(precision[i]), 6),
            "recall": round(float(recall[i]), 6),
            "support": int(support[i]),
        }
        for i, c in enumerate(task.classes)
    }


def confusion_counts(task: Task, y: np.ndarray, p: np.ndarray) -> list[list[int]]:
    """Multiclass: rows actual, columns predicted, both in `task.classes` order (counts)."""
    labels = list(range(len(task.classes)))
    matrix = skm.confusion_matrix(np.asarray(y).astype(int), p.argmax(axis=1), labels=labels)
    return [[int(v) for v in row] for row in matrix]


def interval_coverage(y: np.ndarray, value: np.ndarray, half_width: float) -> float | None:
    """Regression: the share of rows whose actual value lies within value ± half_width."""
    if len(y) == 0:
        return None
    return round(float(np.mean(np.abs(np.asarray(y) - value) <= half_width)), 6)


GRID = np.linspace(0.0, 1.0, 101)


def roc_points(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """True-positive rate on a fixed false-positive-rate grid, so models share one x axis."""
    fpr, tpr, _ = skm.roc_curve(y, p)
    return np.interp(GRID, fpr, tpr)


def pr_points(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Interpolated precision (best precision at recall >= r) on a fixed recall grid."""
    precision, recall, _ = skm.precision_recall_curve(y, p)
    order = np.argsort(recall)
    recall, precision = recall[order], precision[order]
    best = np.maximum.accumulate(precision[::-1])[::-1]
    return np.interp(GRID, recall, best)


def calibration_points(y: np.ndarray, p: np.ndarray, bins: int) -> list[dict[str, float]]:
    """Reliability curve: mean score vs observed positive rate in equal-width score bins."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            rows.append(
                {
                    "bin": b,
                    "mean_predicted": round(float(p[mask].mean()), 6),
                    "fraction_positive": round(float(y[mask].mean()), 6),
                    "count": int(mask.sum()),
                }
            )
    return rows


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int) -> float:
    """The row-weighted gap between mean score and positive rate over equal-width bins."""
    rows = calibration_points(y, p, bins)
    n = len(y)
    ece = sum(r["count"] / n * abs(r["mean_predicted"] - r["fraction_positive"]) for r in rows)
    return round(float(ece), 6)
