"""Slices: the one definition of a segment of a table, used by the report and the gate alike.

A slice is one value of one declared slice column, named ``column=value`` (``contract=One
year``). Every row lands in exactly one slice of every column: a missing value is its own
slice, ``__missing__`` (the preprocessor's name for a gap), so per column the counts add up.
A slice is *small* when it has fewer than `report.min_slice_rows` rows or fewer than
`report.min_slice_class_rows` of either class: its metrics are reported, never judged (the
report leaves it out of `weakest`, the promotion gate skips it).

`slice_metrics` is the report's table (plain JSON read by name,
``slices[column][value]["metrics"]["roc_auc"]``); `retrain.registry.gate` scores the same
`define` slices with the same `retrain.models.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retrain.data.preprocess import MISSING
from retrain.errors import DataError
from retrain.models.metrics import classification_metrics

if TYPE_CHECKING:
    from retrain.config import Params

MAX_LEVELS = 50  # more slices than this is a numeric column, not a segment: bin it first

__all__ = ["MAX_LEVELS", "MISSING", "Slice", "SliceRule", "define", "slice_label", "slice_metrics"]


@dataclass(frozen=True)
class SliceRule:
    """When a slice is too small to judge (report.min_slice_rows, min_slice_class_rows)."""

    min_rows: int
    min_class_rows: int = 1

    @classmethod
    def from_params(cls, params: Params) -> SliceRule:
        return cls(params.report.min_slice_rows, params.report.min_slice_class_rows)

    def small(self, n: int, positives: int) -> bool:
        return n < self.min_rows or min(positives, n - positives) < self.min_class_rows


@dataclass(frozen=True)
class Slice:
    """One value of one slice column: which rows, how many, and whether it can be judged."""

    column: str
    value: str
    rows: np.ndarray  # boolean mask over the table
    n: int
    positives: int
    small: bool

    @property
    def name(self) -> str:
        return f"{self.column}={self.value}"

    @property
    def both_classes(self) -> bool:
        return 0 < self.positives < self.n


def slice_label(value: Any) -> str:
    """A slice value's text: 1.0 -> "1", NaN/None/NA -> "__missing__", anything else as text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return MISSING
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return MISSING
        if float(value).is_integer():
            return str(int(value))
    return str(value)


def define(
    frame: pd.DataFrame, y: np.ndarray, columns: Sequence[str], rule: SliceRule
) -> list[Slice]:
    """Every slice of `columns` of `frame` (row-aligned with 0/1 labels `y`), column by column,
    values sorted by name.

    Raises:
        DataError: a column has more than MAX_LEVELS distinct values.
    """
    y = np.asarray(y).astype(int)
    if len(frame) != len(y):
        raise ValueError(f"frame and y differ in length: {len(frame)}, {len(y)}")
    out = []
    for column in columns:
        labels = np.array([slice_label(v) for v in frame[column].tolist()], dtype=object)
        values = sorted(set(labels))
        if len(values) > MAX_LEVELS:
            raise DataError(
                f"slices: column {column!r} has {len(values)} distinct values "
                f"(at most {MAX_LEVELS}); slice by a categorical column"
            )
        for value in values:
            mask = labels == value
            n, positives = int(mask.sum()), int(y[mask].sum())
            out.append(Slice(column, value, mask, n, positives, rule.small(n, positives)))
    return out


def _entry(s: Slice, y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    ys, ps = y[s.rows], p[s.rows]
    return {
        "name": s.name,
        "n": s.n,
        "positives": s.positives,
        "positive_rate": round(s.positives / s.n, 6),
        "mean_score": round(float(ps.mean()), 6),
        "small": s.small,
        # ROC AUC and friends are undefined on one class; null says so instead of a made-up 0.
        "metrics": classification_metrics(ys, ps, threshold) if s.both_classes else None,
    }


def slice_metrics(
    frame: pd.DataFrame,
    y: np.ndarray,
    p: np.ndarray,
    columns: Sequence[str],
    *,
    threshold: float,
    rule: SliceRule,
    split: str = "test",
) -> dict[str, Any]:
    """Metrics overall and per slice of each column of `columns` (the report's table).

    Args:
        frame: the split's table (the raw values of the slice columns), row-aligned with y, p.
        y: 0/1 targets.
        p: the model's probabilities.
        columns: slice columns; each must have at most MAX_LEVELS distinct values.
        threshold: the decision threshold the model serves with.
        rule: which slices are flagged `small` (still reported).
        split: the split's name, recorded in the result.

    Returns:
        ``{"split", "threshold", "n", "positives", "min_slice_rows", "min_slice_class_rows",
        "overall", "slices", "weakest"}``; ``slices`` maps column -> value -> ``{"name", "n",
        "positives", "positive_rate", "mean_score", "small", "metrics"}``; ``weakest`` maps
        column -> the not-small slice with the lowest ROC AUC.
    """
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=np.float64)
    if not len(frame) == len(y) == len(p):
        raise ValueError(f"frame, y and p differ in length: {len(frame)}, {len(y)}, {len(p)}")
    slices: dict[str, dict[str, Any]] = {c: {} for c in columns}
    for s in define(frame, y, columns, rule):
        slices[s.column][s.value] = _entry(s, y, p, threshold)
    weakest: dict[str, Any] = {}
    for column, entries in slices.items():
        judged = [
            (e["metrics"]["roc_auc"], v)
            for v, e in entries.items()
            if e["metrics"] is not None and not e["small"]
        ]
        if judged:
            auc, value = min(judged)
            weakest[column] = {"value": value, "roc_auc": auc, "n": entries[value]["n"]}
    return {
        "split": split,
        "threshold": round(float(threshold), 6),
        "n": len(y),
        "positives": int(y.sum()),
        "min_slice_rows": rule.min_rows,
        "min_slice_class_rows": rule.min_class_rows,
        "overall": classification_metrics(y, p, threshold),
        "slices": slices,
        "weakest": weakest,
    }
