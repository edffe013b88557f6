"""Classification metrics and the curves behind the DVC plots: the one definition of each
metric, used by evaluate, the report (overall and per slice) and the promotion gate alike."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn import metrics as skm

# Scored from the probabilities alone: comparable between models with different thresholds.
THRESHOLD_FREE = ("roc_auc", "pr_auc", "log_loss", "brier")
# Every metric of classification_metrics, in the order tables show them.
METRICS = ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "log_loss", "brier")
HIGHER_IS_BETTER = {
    "roc_auc": True,
    "pr_auc": True,
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "log_loss": False,
    "brier": False,
    "ece": False,
}
_NEED_BOTH_CLASSES = {"roc_auc", "pr_auc"}


def _clipped(p: np.ndarray) -> np.ndarray:
    return np.clip(p, 1e-7, 1 - 1e-7)


_SCORES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "roc_auc": lambda y, p: float(skm.roc_auc_score(y, p)),
    "pr_auc": lambda y, p: float(skm.average_precision_score(y, p)),
    "log_loss": lambda y, p: float(skm.log_loss(y, _clipped(p), labels=[0, 1])),
    "brier": lambda y, p: float(skm.brier_score_loss(y, p)),
}


def score(metric: str, y: np.ndarray, p: np.ndarray) -> float | None:
    """A threshold-free `metric` of scores `p` for 0/1 labels `y`, rounded to 6 digits; None
    where it is undefined (no rows; one class only for the ranking metrics)."""
    if metric not in _SCORES:
        raise ValueError(f"unknown metric {metric!r}; known: {sorted(_SCORES)}")
    if len(y) == 0 or (metric in _NEED_BOTH_CLASSES and len(np.unique(y)) < 2):
        return None
    return round(_SCORES[metric](y, p), 6)


def gain(metric: str, challenger: float, champion: float) -> float:
    """How much better `challenger` is than `champion` (positive) or worse (negative),
    whatever the metric's direction."""
    diff = challenger - champion
    return round(diff if HIGHER_IS_BETTER[metric] else -diff, 6)


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The score threshold with the highest F1 (chosen on validation, applied to test)."""
    precision, recall, thresholds = skm.precision_recall_curve(y, p)
    f1 = 2 * precision * recall / np.clip(precision + recall, 1e-12, None)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Every metric of METRICS (labels of both classes required), rounded to 6 digits."""
    if len(np.unique(y)) < 2:
        raise ValueError("classification metrics need labels of both classes")
    pred = (p >= threshold).astype(int)
    values: dict[str, float] = {}
    for m in THRESHOLD_FREE:
        value = score(m, y, p)
        assert value is not None  # both classes are present
        values[m] = value
    values |= {
        "accuracy": round(float(skm.accuracy_score(y, pred)), 6),
        "precision": round(float(skm.precision_score(y, pred, zero_division=0)), 6),
        "recall": round(float(skm.recall_score(y, pred, zero_division=0)), 6),
        "f1": round(float(skm.f1_score(y, pred, zero_division=0)), 6),
    }
    return {m: values[m] for m in METRICS}


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
