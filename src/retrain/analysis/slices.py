"""Evaluation metrics per value of each declared slice column, so a weak segment is visible.

The result is plain JSON read by name (``slices[column][value]["metrics"]["roc_auc"]``); the
promotion gate reads it. Every row of the split lands in exactly one value of every slice
column (a missing value is its own slice, ``__missing__``), so per column the counts add up to
the split's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from retrain.errors import DataError
from retrain.models.metrics import classification_metrics

MISSING = "__missing__"
MAX_LEVELS = 50  # more slices than this is a numeric column, not a segment: bin it first


def slice_label(value: Any) -> str:
    """A slice's name: 1.0 -> "1", NaN/None -> "__missing__", anything else as text."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return MISSING
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _entry(y: np.ndarray, p: np.ndarray, threshold: float, min_rows: int) -> dict[str, Any]:
    n, positives = len(y), int(y.sum())
    both_classes = 0 < positives < n
    return {
        "n": n,
        "positives": positives,
        "positive_rate": round(positives / n, 6),
        "mean_score": round(float(p.mean()), 6),
        "small": n < min_rows,
        # ROC AUC and friends are undefined on one class; null says so instead of a made-up 0.
        "metrics": classification_metrics(y, p, threshold) if both_classes else None,
    }


def slice_metrics(
    frame: pd.DataFrame,
    y: np.ndarray,
    p: np.ndarray,
    columns: Sequence[str],
    *,
    threshold: float,
    min_rows: int,
    split: str = "test",
) -> dict[str, Any]:
    """Metrics overall and per value of each column of `columns`.

    Args:
        frame: the split's table (the raw values of the slice columns), row-aligned with y, p.
        y: 0/1 targets.
        p: the model's probabilities.
        columns: slice columns; each must have at most MAX_LEVELS distinct values.
        threshold: the decision threshold the model serves with.
        min_rows: slices with fewer rows are flagged `small` (still reported).
        split: the split's name, recorded in the result.

    Returns:
        ``{"split", "threshold", "n", "positives", "overall", "slices", "weakest"}``; ``slices``
        maps column -> value -> ``{"n", "positives", "positive_rate", "mean_score", "small",
        "metrics"}``; ``weakest`` maps column -> the not-small slice with the lowest ROC AUC.
    """
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=np.float64)
    if not len(frame) == len(y) == len(p):
        raise ValueError(f"frame, y and p differ in length: {len(frame)}, {len(y)}, {len(p)}")
    slices: dict[str, dict[str, Any]] = {}
    weakest: dict[str, Any] = {}
    for column in columns:
        labels = np.array([slice_label(v) for v in frame[column].tolist()], dtype=object)
        values = sorted(set(labels))
        if len(values) > MAX_LEVELS:
            raise DataError(
                f"report.slices: column {column!r} has {len(values)} distinct values "
                f"(at most {MAX_LEVELS}); slice by a categorical column"
            )
        slices[column] = {
            v: _entry(y[labels == v], p[labels == v], threshold, min_rows) for v in values
        }
        judged = [
            (e["metrics"]["roc_auc"], v)
            for v, e in slices[column].items()
            if e["metrics"] is not None and not e["small"]
        ]
        if judged:
            auc, value = min(judged)
            weakest[column] = {"value": value, "roc_auc": auc, "n": slices[column][value]["n"]}
    return {
        "split": split,
        "threshold": round(float(threshold), 6),
        "n": len(y),
        "positives": int(y.sum()),
        "overall": classification_metrics(y, p, threshold),
        "slices": slices,
        "weakest": weakest,
    }
