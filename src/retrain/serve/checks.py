"""The dataset suite's row-level expectations, applied to every request.

A request is judged by the same suite and the same code as a batch (`validate_suite`, what
`validate_frame` runs, with the target optional): its verdict and its messages decide every
422. Running Great Expectations per request would cost tens of milliseconds, so a request
first goes through `fast_pass`: vectorised numpy versions of the covered expectation types that return True
only where GE would certainly pass (as `retrain.validation.precheck` does for batches, but on
column arrays, without building pandas objects per check). Anything they cannot prove goes to
`validate_suite`; a test checks that `fast_pass` never passes what GE fails.

Expectations about the whole table rather than its rows do not apply to a request of a few
rows: non-blocking ones (row counts, column means) and `mostly` shares. The monitor checks
the logged traffic as a table.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.config import DatasetSchema
from retrain.validation.suite import BLOCKING, load_suite_json, validate_suite

Columns = Mapping[str, np.ndarray]
FastCheck = Callable[[Columns, dict[str, Any]], bool]

PROBLEMS = {
    "expect_column_values_to_not_be_null": "missing value (null or NaN)",
    "expect_column_values_to_be_in_type_list": "wrong type",
    "expect_column_values_to_be_between": "out of range",
    "expect_column_values_to_be_unique": "duplicate value",
    "expect_column_values_to_be_in_set": "value not allowed",
}


@dataclass(frozen=True)
class RowProblem:
    column: str | None
    problem: str
    message: str
    rows: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "problem": self.problem,
            "message": self.message,
            "rows": list(self.rows),
        }


def _nulls(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return np.isnan(values)
    return np.asarray(pd.isna(values), dtype=bool)


def _not_null(cols: Columns, kw: dict[str, Any]) -> bool:
    values = cols[kw["column"]]
    # With a row condition the rows it keeps are a subset: none null overall, none there.
    return len(values) > 0 and not _nulls(values).any()


def _in_set(cols: Columns, kw: dict[str, Any]) -> bool:
    values = cols[kw["column"]]
    kept = values[~_nulls(values)]
    if len(kept) == 0:
        return False
    allowed = kw["value_set"]
    if kept.dtype.kind == "O":
        members = set(allowed)
        return all(isinstance(v, str) and v in members for v in kept)
    if kept.dtype.kind in "iuf" and all(
        isinstance(a, int | float) and not isinstance(a, bool) for a in allowed
    ):
        return bool(np.isin(kept, np.asarray(allowed, dtype="float64")).all())
    return False


def _between(cols: Columns, kw: dict[str, Any]) -> bool:
    values = cols[kw["column"]]
    if values.dtype.kind not in "iuf":
        return False
    kept = values[~_nulls(values)]
    low, high = kw.get("min_value"), kw.get("max_value")
    return (
        len(kept) > 0
        and (low is None or bool((kept >= low).all()))
        and (high is None or bool((kept <= high).all()))
    )


def _in_type_list(cols: Columns, kw: dict[str, Any]) -> bool:
    dtype = cols[kw["column"]].dtype
    return dtype.kind != "O" and dtype.name in kw["type_list"]


def _unique(cols: Columns, kw: dict[str, Any]) -> bool:
    values = cols[kw["column"]]
    kept = values[~_nulls(values)]
    return len(kept) > 0 and len(set(kept.tolist())) == len(kept)


_ROWS = {"row_condition", "condition_parser"}
FAST: dict[str, tuple[FastCheck, set[str]]] = {
    "expect_column_values_to_not_be_null": (_not_null, {"column", *_ROWS}),
    "expect_column_values_to_be_in_set": (_in_set, {"column", "value_set"}),
    "expect_column_values_to_be_between": (_between, {"column", "min_value", "max_value"}),
    "expect_column_values_to_be_in_type_list": (_in_type_list, {"column", "type_list"}),
    "expect_column_values_to_be_unique": (_unique, {"column"}),
}


class RequestChecker:
    """The suite of `schema`, reduced to what applies to a request's rows."""

    def __init__(self, suite_path: Path, schema: DatasetSchema) -> None:
        self.suite_path = suite_path
        self.schema = schema
        self.optional = [schema.target, *([schema.id_column] if schema.id_column else [])]
        suite = load_suite_json(suite_path)
        self.allowed: set[str] | None = None
        kept = []
        for e in suite["expectations"]:
            if not isinstance(e, dict) or str(e.get("severity") or BLOCKING).lower() != BLOCKING:
                continue
            kwargs = e.get("kwargs") or {}
            if e.get("type") == "expect_table_columns_to_match_set":
                if kwargs.get("exact_match", True):
                    self.allowed = set(kwargs.get("column_set") or [])
                continue  # checked below as missing / unexpected columns
            if kwargs.get("mostly") is not None:
                continue  # a share of a table's rows, not a property of a row
            kept.append(e)
        self.suite = {**suite, "expectations": kept}
        self._ge = threading.Lock()  # GE's context is not meant to be shared by threads

    def columns(self, present: list[str]) -> list[RowProblem]:
        """Missing feature columns and columns the suite does not allow."""
        out = [
            RowProblem(c, "missing column", f"column {c!r} is missing")
            for c in self.schema.features
            if c not in present
        ]
        if self.allowed is not None:
            out += [
                RowProblem(c, "unexpected column", f"column {c!r} is not in the dataset schema")
                for c in present
                if c not in self.allowed
            ]
        return out

    def fast_pass(self, cols: Columns) -> bool:
        """True only if every kept expectation certainly passes on these columns."""
        for e in self.suite["expectations"]:
            found = FAST.get(str(e.get("type")))
            kwargs = e.get("kwargs") or {}
            if found is None or not set(kwargs) <= found[1]:
                return False
            column = kwargs.get("column")
            if column is not None and column not in cols:
                if column in self.optional:
                    continue
                return False
            if not found[0](cols, kwargs):
                return False
        return True

    def check(self, df: pd.DataFrame, cols: Columns | None = None) -> list[RowProblem]:
        """Every problem of `df` (empty: score it). Columns are checked first."""
        problems = self.columns(list(df.columns))
        if problems:
            return problems
        if cols is None:
            cols = {c: df[c].to_numpy() for c in df.columns}
        if self.fast_pass(cols):
            return []
        with self._ge:
            result = validate_suite(df, self.suite, "request", optional_columns=self.optional)
        return [
            RowProblem(
                f.column,
                self._problem(f.expectation, f.column),
                f"column {f.column!r}: {f.detail} ({f.expectation})"
                if f.column
                else f"{f.detail} ({f.expectation})",
                tuple(f.rows),
            )
            for f in result.blocking_failures
        ]

    def _problem(self, expectation: str, column: str | None) -> str:
        if expectation == "expect_column_values_to_be_in_set" and (
            column in self.schema.categorical
        ):
            return "unseen category"
        return PROBLEMS.get(expectation, expectation)
