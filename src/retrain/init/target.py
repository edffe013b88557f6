"""The task a target asks for (binary, multiclass or regression), chosen with its reason.

The rule (README, "Use your own table"), from the target's values (no blanks):

- exactly 2 distinct values (text, numbers or booleans): binary, the positive class as
  before (`columns.positive_class`);
- text with 3 or more values: multiclass, its classes pinned in `dataset.classes` sorted
  (text as text, numbers by value): the order of the model's outputs;
- numbers with 3 or more values: regression, integers included. A count or an amount
  (basket size, days to deliver, a 1..5 rating) keeps its order and its distances as a
  number; as classes it would lose both, and a batch with a value never seen (a basket of
  11) would be a validation error. Integer codes (segment 1..4) are the exception a person
  knows and a table does not show: the printed reason says to use `--task multiclass` then.

`--task` overrides the choice; an impossible one (regression on text, multiclass on two
values, binary on three) is a one-line error naming the column. A multiclass target with more
than MAX_CLASSES classes, or a class of fewer than MIN_CLASS_ROWS rows (too rare for every
split to hold it), is a one-line error saying what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pandas as pd

from retrain.init.columns import positive_class
from retrain.init.errors import InitError
from retrain.init.values import is_integer_valued, plain
from retrain.task import TASKS, TaskKind

# More classes than this is rarely one decision: one-hot outputs that few rows train each.
MAX_CLASSES = 50
# The seeded, stratified split puts about 64% / 16% / 20% of each class in train /
# validation / test: below this many rows a class is missing from a split or has one row
# there, and its per-class metrics are noise.
MIN_CLASS_ROWS = 10
# Integers with at most this many values: the reason mentions `--task multiclass`.
FEW_VALUES = 20


@dataclass(frozen=True)
class TargetChoice:
    """The task of the target, its classes (multiclass), its positive and negative class
    (binary) and the reason printed beside the choice."""

    task: TaskKind
    reason: str
    classes: tuple[Any, ...] = ()
    positive_class: Any = None
    negative_class: Any = None


def _is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _sorted_levels(values: pd.Series) -> list[Any]:
    """The distinct values in the pinned order: numbers by value, anything else as text."""
    levels = [plain(v) for v in values.unique()]
    return sorted(levels) if _is_number(values) else sorted(levels, key=str)


def _shown(levels: list[Any]) -> str:
    return ", ".join(str(v) for v in levels[:8]) + (" ..." if len(levels) > 8 else "")


def _binary(values: pd.Series, given: str | None, target: str) -> TargetChoice:
    pos, neg, why = positive_class(values, given, target)
    return TargetChoice("binary", f"positive class {pos!r} ({why})", (), pos, neg)


def _multiclass(values: pd.Series, target: str, why: str) -> TargetChoice:
    levels = _sorted_levels(values)
    if len(levels) < 3:
        raise InitError(
            f"column {target!r} (target) has {len(levels)} distinct values "
            f"{[plain(v) for v in levels]}; a multiclass target has 3 or more: use --task binary"
        )
    if len(levels) > MAX_CLASSES:
        raise InitError(
            f"column {target!r} (target) has {len(levels)} classes, more than {MAX_CLASSES}: "
            "group the rare ones (e.g. into 'other') in the table, or use --task regression "
            "if the values are quantities"
        )
    counts = values.value_counts()
    rare = [v for v in levels if counts[v] < MIN_CLASS_ROWS]
    if rare:
        raise InitError(
            f"column {target!r} (target) has class {rare[0]!r} in {int(counts[rare[0]])} rows; "
            f"every class needs at least {MIN_CLASS_ROWS} so that the train, validation and "
            "test splits each hold it: merge it into a similar class or drop its rows"
        )
    reason = f"{len(levels)} classes: {_shown(levels)}{why}"
    return TargetChoice("multiclass", reason, tuple(levels))


def _regression(values: pd.Series, target: str, why: str) -> TargetChoice:
    if not _is_number(values):
        example = values.iloc[0]
        raise InitError(
            f"column {target!r} (target) holds text (e.g. {plain(example)!r}); a regression "
            "target must be numeric: use --task multiclass, or fix the export"
        )
    distinct = int(values.nunique())
    if distinct < 2:
        raise InitError(f"column {target!r} (target) has one value only: nothing to predict")
    reason = f"numeric, {distinct} distinct values{why}"
    if is_integer_valued(values) and distinct <= FEW_VALUES:
        low, high = plain(values.min()), plain(values.max())
        reason += (
            f"; integers {low}..{high}: if they are codes rather than quantities, use "
            "--task multiclass"
        )
    return TargetChoice("regression", reason)


def choose_task(
    values: pd.Series, target: str, *, task: str | None = None, given_positive: str | None = None
) -> TargetChoice:
    """The target's task: `task` when given (checked against the values), else the rule of
    the module docstring. `values` has no blanks."""
    if task is not None and task not in TASKS:
        raise InitError(f"--task {task!r} is not a task; one of {', '.join(TASKS)}")
    distinct = int(values.nunique())
    inferred = "binary" if distinct == 2 else "regression" if _is_number(values) else "multiclass"
    chosen = cast(TaskKind, task or inferred)
    if given_positive is not None and chosen != "binary":
        raise InitError(
            f"--positive-class is for a binary target only; column {target!r} (target) is "
            f"{chosen} ({distinct} distinct values): leave it out"
        )
    if chosen == "binary":
        return _binary(values, given_positive, target)
    why = "; given (--task)" if task else ""
    if chosen == "multiclass":
        return _multiclass(values, target, why)
    return _regression(values, target, why)
