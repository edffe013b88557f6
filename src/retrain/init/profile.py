"""Profiling a table: the role of every column, each with a reason a reviewer can check."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

import retrain.init.columns as columns
from retrain.init.errors import InitError
from retrain.init.leaks import LeakScore, flag_leaks
from retrain.init.target import choose_task
from retrain.init.values import is_integer_valued
from retrain.task import TaskKind


@dataclass
class Profile:
    """What `init` decided about each column, and why."""

    name: str
    target: str
    # binary only (None for the other tasks)
    positive_class: str | int | bool | None
    negative_class: str | int | bool | None
    id_column: str | None
    numeric: list[str]
    categorical: list[str]
    left_out: dict[str, str]
    reasons: dict[str, str]
    fill_values: dict[str, float | int]
    slices: list[str]
    n_rows: int
    notes: list[str] = field(default_factory=list)
    # Features that predict the target almost perfectly on their own (kept or not).
    leaks: list[LeakScore] = field(default_factory=list)
    # The task (retrain.task) chosen from the target, why, and its classes (multiclass only,
    # in the pinned order of the model's outputs).
    task: TaskKind = "binary"
    task_reason: str = ""
    classes: tuple[str | int | bool, ...] = ()
    # Categoricals with more than columns.MAX_LEVELS levels: target + frequency encoded.
    high_cardinality: list[str] = field(default_factory=list)


def slug(text: str) -> str:
    """A dataset name from a file name: lower case, words joined by underscores."""
    out = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return out or "dataset"


def _check_options(df: pd.DataFrame, target: str, id_column: str | None, keep: list[str]) -> None:
    if target not in df.columns:
        raise InitError(f"--target {target!r} is not a column (columns: {list(df.columns)})")
    if id_column is not None and id_column not in df.columns:
        raise InitError(f"--id {id_column!r} is not a column (columns: {list(df.columns)})")
    for col in keep:
        if col not in df.columns:
            raise InitError(f"--keep {col!r} is not a column (columns: {list(df.columns)})")
    if df[target].isna().any():
        raise InitError(f"column {target!r} (target) has {int(df[target].isna().sum())} blanks")


def _fill_values(df: pd.DataFrame, numeric: Iterable[str]) -> dict[str, float | int]:
    """The median of each numeric column with gaps, written as the column is."""
    fill: dict[str, float | int] = {}
    for col in numeric:
        if df[col].isna().any():
            median = float(df[col].median())
            integer = is_integer_valued(df[col])
            fill[col] = int(round(median)) if integer else round(median, 6)
    return fill


def _roles(
    df: pd.DataFrame, target: str, id_column: str | None, reasons: dict[str, str]
) -> tuple[str | None, dict[str, str]]:
    """The id column (given or detected) and every other column's role; `reasons` filled."""
    n = len(df)
    if id_column is not None:
        reasons[id_column] = "id column (given)"
    roles: dict[str, str] = {}
    for col in df.columns:
        if col in (target, id_column):
            continue
        if id_column is None and columns.is_id(col, df[col], n):
            id_column = col
            reasons[col] = "id column: its name says so and every row has its own value"
            continue
        roles[col], reasons[col] = columns.classify(col, df[col], n)
    return id_column, roles


def profile(
    df: pd.DataFrame,
    *,
    target: str,
    name: str,
    positive_class: str | None = None,
    id_column: str | None = None,
    keep: Iterable[str] = (),
    task: str | None = None,
) -> Profile:
    """Decide the role of every column of `df`, each with a reason a reviewer can check.

    The task is chosen from the target (`retrain.init.target`) unless `task` is given.
    A feature that predicts the target almost perfectly on its own is left out as a likely
    leak (see `retrain.init.leaks`) unless it is in `keep`.
    """
    keep = list(keep)
    _check_options(df, target, id_column, keep)
    choice = choose_task(df[target], target, task=task, given_positive=positive_class)
    kind = choice.task
    reasons: dict[str, str] = {
        target: f"target; {choice.reason}"
        if kind == "binary"
        else f"target; {kind} ({choice.reason})"
    }
    id_column, roles = _roles(df, target, id_column, reasons)
    features = [c for c, role in roles.items() if role != "left out"]
    leaks = flag_leaks(df, features, target, kind)
    for leak in leaks:
        if leak.column in keep:
            reasons[leak.column] += f"; kept by --keep, a likely leak: {leak.describe()}"
        else:
            roles[leak.column] = "left out"
            reasons[leak.column] = f"likely leak: {leak.describe()}"
    numeric = [c for c, role in roles.items() if role == "numeric"]
    categorical = [c for c, role in roles.items() if role == "categorical"]
    left_out = {c: reasons[c] for c, role in roles.items() if role == "left out"}
    if not numeric and not categorical:
        raise InitError(f"no feature column left in the table after {sorted(left_out)}")
    return Profile(
        name=name,
        target=target,
        positive_class=choice.positive_class,
        negative_class=choice.negative_class,
        id_column=id_column,
        numeric=numeric,
        categorical=categorical,
        left_out=left_out,
        reasons=reasons,
        fill_values=_fill_values(df, numeric),
        slices=columns.slices(df, categorical),
        n_rows=len(df),
        leaks=leaks,
        task=kind,
        task_reason=choice.reason,
        classes=choice.classes,
        high_cardinality=columns.high_cardinality(df, categorical),
    )
