"""Classification metrics and the curves behind the DVC plots."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

METRICS = ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "log_loss", "brier")


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The score threshold with the highest F1 (chosen on validation, applied to test)."""
    precision, recall, thresholds = skm.precision_recall_curve(y, p)
    f1 = 2 * precision * recall / np.clip(precision + recall, 1e-12, None)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    pred = (p >= threshold).astype(int)
    clipped = np.clip(p, 1e-7, 1 - 1e-7)
    values = {
        "roc_auc": skm.roc_auc_score(y, p),
        "pr_auc": skm.average_precision_score(y, p),
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, zero_division=0),
        "recall": skm.recall_score(y, pred, zero_division=0),
        "f1": skm.f1_score(y, pred, zero_division=0),
        "log_loss": skm.log_loss(y, clipped, labels=[0, 1]),
        "brier": skm.brier_score_loss(y, p),
    }
    return {k: round(float(v), 6) for k, v in values.items()}


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
    rows = calibration_points(y, p, bins)
    n = len(y)
    ece = sum(r["count"] / n * abs(r["mean_predicted"] - r["fraction_positive"]) for r in rows)
    return round(float(ece), 6)
