"""Slices: the one definition of a segment of a table, used by the report and the gate alike.

A slice is one value of one declared slice column, named ``column=value`` (``contract=One
year``). Every row lands in exactly one slice of every column: a missing value is its own
slice, ``__missing__`` (the preprocessor's name for a gap), so per column the counts add up.
A slice is *small* when it has fewer than `report.min_slice_rows` rows or, for a classification
task, fewer than `report.min_slice_class_rows` of either class (binary) or of any one of the
pinned classes (multiclass; regression has rows only): its metrics are reported, never judged
(the report leaves it out of `weakest`, the promotion gate skips it).

`slice_metrics` is the report's table (plain JSON read by name,
``slices[column][value]["metrics"]["roc_auc"]``); `retrain.registry.gate` scores the same
`define` slices with the same `retrain.models.metrics` (binary) or `retrain.registry.evidence`
definitions (multiclass, regression: `task_metrics`).
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
from retrain.registry.evidence import point
from retrain.task import HIGHER_IS_BETTER, Task

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

    def small_counts(self, n: int, class_rows: Sequence[int] | None) -> bool:
        """Multiclass: too few rows, or too few of any class; regression (None): rows only."""
        if n < self.min_rows:
            return True
        return class_rows is not None and min(class_rows) < self.min_class_rows


@dataclass(frozen=True)
class Slice:
    """One value of one slice column: which rows, how many, and whether it can be judged."""

    column: str
    value: str
    rows: np.ndarray  # boolean mask over the table
    n: int
    positives: int  # binary: rows of the positive class; 0 for the other tasks
    small: bool
    class_rows: tuple[int, ...] = ()  # multiclass: rows of each class, in the pinned order

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
    frame: pd.DataFrame,
    y: np.ndarray,
    columns: Sequence[str],
    rule: SliceRule,
    task: Task | None = None,
) -> list[Slice]:
    """Every slice of `columns` of `frame` (row-aligned with the targets `y` of `task`, binary
    when None), column by column, values sorted by name.

    Raises:
        DataError: a column has more than MAX_LEVELS distinct values.
    """
    kind = "binary" if task is None else task.kind
    y = np.asarray(y, dtype=np.float64) if kind == "regression" else np.asarray(y).astype(int)
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
            out.append(_slice(column, value, mask, y, rule, task))
    return out


def _slice(
    column: str, value: str, mask: np.ndarray, y: np.ndarray, rule: SliceRule, task: Task | None
) -> Slice:
    n = int(mask.sum())
    if task is None or task.kind == "binary":
        positives = int(y[mask].sum())
        return Slice(column, value, mask, n, positives, rule.small(n, positives))
    if task.kind == "multiclass":
        counts = tuple(int(c) for c in np.bincount(y[mask], minlength=len(task.classes)))
        return Slice(column, value, mask, n, 0, rule.small_counts(n, counts), counts)
    return Slice(column, value, mask, n, 0, rule.small_counts(n, None))


def task_metrics(task: Task, y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    """A multiclass or regression prediction's metrics (`task.metrics`), rounded to 6 digits;
    None where one is undefined (a class missing for ROC AUC, a constant target for R²)."""
    from sklearn.metrics import accuracy_score, f1_score

    values: dict[str, float | None] = {}
    for metric in task.metrics:
        if metric == "accuracy":
            values[metric] = round(float(accuracy_score(y, np.argmax(p, axis=1))), 6)
        elif metric == "macro_f1":
            predicted = np.argmax(p, axis=1)
            labels = list(range(len(task.classes)))
            f1 = f1_score(y, predicted, labels=labels, average="macro", zero_division=0)
            values[metric] = round(float(f1), 6)
        else:
            values[metric] = point(metric, y, p) if len(y) else None
    return values


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
    task: Task | None = None,
    metric: str | None = None,
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
        task: the task (binary when None); multiclass and regression: `task_slice_metrics`.
        metric: the metric `weakest` ranks by for multiclass and regression (the gate's).

    Returns:
        ``{"split", "threshold", "n", "positives", "min_slice_rows", "min_slice_class_rows",
        "overall", "slices", "weakest"}``; ``slices`` maps column -> value -> ``{"name", "n",
        "positives", "positive_rate", "mean_score", "small", "metrics"}``; ``weakest`` maps
        column -> the not-small slice with the lowest ROC AUC.
    """
    if task is not None and task.kind != "binary":
        return task_slice_metrics(
            frame, y, p, columns, task=task, metric=metric or task.default_metric, rule=rule
        )
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


def _task_entry(s: Slice, y: np.ndarray, p: np.ndarray, task: Task) -> dict[str, Any]:
    ys, ps = y[s.rows], p[s.rows]
    entry: dict[str, Any] = {"name": s.name, "n": s.n, "small": s.small}
    if task.kind == "multiclass":
        entry["class_rows"] = dict(zip(map(str, task.classes), s.class_rows, strict=True))
    else:
        entry["mean_target"] = round(float(ys.mean()), 6)
        entry["mean_prediction"] = round(float(ps.mean()), 6)
    entry["metrics"] = task_metrics(task, ys, ps)
    return entry


def task_slice_metrics(
    frame: pd.DataFrame,
    y: np.ndarray,
    p: np.ndarray,
    columns: Sequence[str],
    *,
    task: Task,
    metric: str,
    rule: SliceRule,
    split: str = "test",
) -> dict[str, Any]:
    """`slice_metrics` of a multiclass or regression prediction: the task's metrics overall and
    per slice (no threshold: the predicted class is the most probable one, a value is a
    value). A multiclass slice records its rows per class; a regression slice its mean target
    and mean prediction. ``weakest`` maps column -> the not-small slice worst on `metric`
    (``{"value", "metric", <metric>, "n"}``)."""
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64) if task.kind == "regression" else np.asarray(y).astype(int)
    if not len(frame) == len(y) == len(p):
        raise ValueError(f"frame, y and p differ in length: {len(frame)}, {len(y)}, {len(p)}")
    slices: dict[str, dict[str, Any]] = {c: {} for c in columns}
    for s in define(frame, y, columns, rule, task):
        slices[s.column][s.value] = _task_entry(s, y, p, task)
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    weakest: dict[str, Any] = {}
    for column, entries in slices.items():
        judged = [
            (sign * e["metrics"][metric], v)
            for v, e in entries.items()
            if e["metrics"].get(metric) is not None and not e["small"]
        ]
        if judged:
            value = min(judged)[1]
            worst = entries[value]
            weakest[column] = {
                "value": value,
                "metric": metric,
                metric: worst["metrics"][metric],
                "n": worst["n"],
            }
    out: dict[str, Any] = {"split": split, "task": task.kind, "metric": metric, "n": len(y)}
    if task.kind == "multiclass":
        counts = np.bincount(y, minlength=len(task.classes))
        out["class_rows"] = dict(zip(map(str, task.classes), map(int, counts), strict=True))
    elif len(y):
        # The target's scale on the split, for reading RMSE and MAE (in the target's units).
        out["target"] = {
            k: round(float(f(y)), 6)
            for k, f in (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max))
        }
    return {
        **out,
        "min_slice_rows": rule.min_rows,
        "min_slice_class_rows": rule.min_class_rows if task.kind == "multiclass" else None,
        "overall": task_metrics(task, y, p),
        "slices": slices,
        "weakest": weakest,
    }
