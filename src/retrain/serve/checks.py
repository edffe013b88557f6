"""The dataset suite's row-level expectations, applied to every request.

A request is judged by the same suite and the same code as a batch (`validate_suite`, what
`validate_frame` runs, with the target optional): its verdict and its messages decide every
422. Running Great Expectations per request would cost tens of milliseconds, so a request
first goes through `fast_pass`: vectorised numpy versions of the covered expectation types
that return True only where GE would certainly pass (as `retrain.validation.precheck` does
for batches, but on column arrays, without building pandas objects per check). Anything
they cannot prove goes to `validate_suite`; a test checks that `fast_pass` never passes what
GE fails.

Expectations about the whole table rather than its rows do not apply to a request of a few
rows: non-blocking ones (row counts, column means) and `mostly` shares. The monitor checks
the logged traffic as a table.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.config import DatasetSchema
from retrain.validation.suite import BLOCKING, load_suite_json, validate_suite

Columns = Mapping[str, np.ndarray]

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
    kind = values.dtype.kind
    if kind == "f":
        return np.isnan(values)
    if kind in "iub":
        return np.zeros(len(values), dtype=bool)
    if len(values) <= 64 and all(type(v) is str for v in values):
        return np.zeros(len(values), dtype=bool)  # a request's few strings: no pandas call
    return np.asarray(pd.isna(values), dtype=bool)


# Each check gets the column, its null mask (computed once per column) and its kwargs.
FastCheck = Callable[[np.ndarray, np.ndarray, dict[str, Any]], bool]


def _not_null(values: np.ndarray, nulls: np.ndarray, kw: dict[str, Any]) -> bool:
    # With a row condition the rows it keeps are a subset: none null overall, none there.
    # Otherwise `fast_pass` judges the rows the condition keeps (see `_conditional`).
    return len(values) > 0 and not nulls.any()


def _conditional(
    cols: Columns, df: pd.DataFrame | None, nulls: np.ndarray, condition: str
) -> bool:
    """No null among the rows `condition` keeps, selected as GE does (`DataFrame.query` with
    the pandas parser). No row kept passes too: GE passes an expectation with no rows."""
    simple = _SIMPLE.match(condition)
    values = cols.get(simple["column"]) if simple else None
    if simple and values is not None and values.dtype.kind in "iuf":
        # `column > 0`: numpy compares as pandas does (NaN never matches), 100x faster
        # than parsing the expression with df.eval, and no frame to build per request.
        kept = _OPS[simple["op"]](values, float(simple["value"]))
    else:
        try:
            frame = df if df is not None else pd.DataFrame(cols, copy=False)
            kept = np.asarray(frame.eval(condition, parser="pandas"), dtype=bool)
        except Exception:  # a condition pandas cannot evaluate here: ask GE
            return False
    return not nulls[kept].any()


_SIMPLE = re.compile(
    r"^\s*(?P<column>[A-Za-z_]\w*)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>-?\d+(\.\d+)?)\s*$"
)
_OPS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    ">": np.greater,
    ">=": np.greater_equal,
    "<": np.less,
    "<=": np.less_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


def _in_set(values: np.ndarray, nulls: np.ndarray, kw: dict[str, Any]) -> bool:
    kept = values[~nulls] if nulls.any() else values
    if len(kept) == 0:
        return True  # every value null: GE's column map expectations pass vacuously
    members, numbers = kw["_members"], kw["_numbers"]
    if kept.dtype.kind == "O":
        return all(type(v) is str and v in members for v in kept)
    if kept.dtype.kind in "iuf" and numbers is not None:
        if len(kept) <= 16:  # a request's few values: set lookups, not np.isin's sort
            return all(v in kw["_number_set"] for v in kept.tolist())
        return bool(np.isin(kept, numbers).all())
    return False


def _between(values: np.ndarray, nulls: np.ndarray, kw: dict[str, Any]) -> bool:
    if values.dtype.kind not in "iuf":
        return False
    kept = values[~nulls] if nulls.any() else values
    low, high = kw.get("min_value"), kw.get("max_value")
    return (  # every value null (a new customer's one blank row): vacuously true, as GE
        (low is None or bool((kept >= low).all())) and (high is None or bool((kept <= high).all()))
    )


def _in_type_list(values: np.ndarray, nulls: np.ndarray, kw: dict[str, Any]) -> bool:
    return values.dtype.kind != "O" and values.dtype.name in kw["type_list"]


def _unique(values: np.ndarray, nulls: np.ndarray, kw: dict[str, Any]) -> bool:
    kept = values[~nulls]
    return len(kept) > 0 and len(set(kept.tolist())) == len(kept)


_ROWS = {"row_condition", "condition_parser"}
FAST: dict[str, tuple[FastCheck, set[str]]] = {
    "expect_column_values_to_not_be_null": (_not_null, {"column", *_ROWS}),
    "expect_column_values_to_be_in_set": (_in_set, {"column", "value_set"}),
    "expect_column_values_to_be_between": (_between, {"column", "min_value", "max_value"}),
    "expect_column_values_to_be_in_type_list": (_in_type_list, {"column", "type_list"}),
    "expect_column_values_to_be_unique": (_unique, {"column"}),
}


def _compile(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Per-expectation constants, computed once (value sets as a set and as numbers)."""
    out = dict(kwargs)
    if "value_set" in kwargs:
        allowed = list(kwargs["value_set"])
        out["_members"] = frozenset(a for a in allowed if isinstance(a, str))
        numeric = all(isinstance(a, int | float) and not isinstance(a, bool) for a in allowed)
        out["_numbers"] = np.asarray(allowed, dtype="float64") if numeric else None
        out["_number_set"] = frozenset(out["_numbers"].tolist()) if numeric else frozenset()
    return out


_INT_DTYPE = re.compile(r"u?int(8|16|32|64)?")  # pandas/numpy names, lower-cased (Int64 too)


@dataclass(frozen=True)
class ColumnRule:
    """What the suite demands of one column of every request (its kept expectations).

    Attributes:
        needs_value: an unconditional not-null expectation (a null is always a 422).
        values: the allowed values of an in-set expectation, in the suite's order.
        minimum, maximum: the bounds of a between expectation.
        integer: the suite's type list names integer dtypes only.
    """

    needs_value: bool = False
    values: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False


def _rule(rule: ColumnRule, kind: str, kwargs: dict[str, Any]) -> ColumnRule:
    """`rule` with what one expectation of type `kind` adds to it."""
    if kind == "expect_column_values_to_not_be_null" and not kwargs.get("row_condition"):
        return replace(rule, needs_value=True)
    if kind == "expect_column_values_to_be_in_set":
        return replace(rule, values=tuple(kwargs.get("value_set") or ()))
    if kind == "expect_column_values_to_be_between":
        return replace(rule, minimum=kwargs.get("min_value"), maximum=kwargs.get("max_value"))
    if kind == "expect_column_values_to_be_in_type_list":
        types = [str(t).lower() for t in kwargs.get("type_list") or ()]
        ints = bool(types) and all(_INT_DTYPE.fullmatch(t) for t in types)
        return replace(rule, integer=ints)
    return rule


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
        self._fast = self._compile_fast()
        self.warmed = False  # Great Expectations imported (a first 422 is then quick)
        self._ge = threading.Lock()  # GE's context is not meant to be shared by threads
        self._importing = threading.Lock()

    def warm(self) -> None:
        """Import Great Expectations now, off the request path (it takes seconds)."""
        # One import at a time: GE's circular imports, run by the warm-up thread and a
        # request's check at once, leave one of them a half-initialised module.
        with self._importing:
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # as suite._context
            import great_expectations  # noqa: F401

            self.warmed = True

    def rules(self) -> dict[str, ColumnRule]:
        """Per column, what the kept expectations demand of a request's values: the
        request model documents exactly this (nullability, allowed levels, bounds)."""
        out: dict[str, ColumnRule] = {}
        for e in self.suite["expectations"]:
            kwargs = e.get("kwargs") or {}
            column = kwargs.get("column")
            if isinstance(column, str):
                out[column] = _rule(out.get(column, ColumnRule()), str(e.get("type")), kwargs)
        return out

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

    def fast_pass(self, cols: Columns, df: pd.DataFrame | None = None) -> bool:
        """True only if every kept expectation certainly passes on these columns.

        A not-null expectation with a row condition judges the rows the condition keeps,
        when the column has nulls at all: on the arrays for a comparison with a number,
        else on `df` (the same columns as a frame; built from `cols` when not given).
        """
        if self._fast is None:
            return False
        for column, checks in self._fast:
            values = cols.get(column)
            if values is None:
                if column in self.optional:
                    continue
                return False
            nulls = _nulls(values)
            for check, kwargs in checks:
                if check(values, nulls, kwargs):
                    continue
                condition = kwargs.get("row_condition")
                if (
                    check is _not_null
                    and isinstance(condition, str)
                    and kwargs.get("condition_parser") == "pandas"
                    and len(values) > 0
                    and _conditional(cols, df, nulls, condition)
                ):
                    continue
                return False
        return True

    def _compile_fast(self) -> list[tuple[str, list[tuple[FastCheck, dict[str, Any]]]]] | None:
        """The kept expectations grouped by column; None if one is not covered (ask GE)."""
        by_column: dict[str, list[tuple[FastCheck, dict[str, Any]]]] = {}
        for e in self.suite["expectations"]:
            found = FAST.get(str(e.get("type")))
            kwargs = e.get("kwargs") or {}
            if found is None or not set(kwargs) <= found[1] or "column" not in kwargs:
                return None
            by_column.setdefault(kwargs["column"], []).append((found[0], _compile(kwargs)))
        return list(by_column.items())

    def check(self, df: pd.DataFrame, cols: Columns | None = None) -> list[RowProblem]:
        """Every problem of `df` (empty: score it). Columns are checked first."""
        problems = self.columns(list(df.columns))
        if problems:
            return problems
        if cols is None:
            cols = {c: df[c].to_numpy() for c in df.columns}
        if self.fast_pass(cols, df):
            return []
        if not self.warmed:
            self.warm()  # or wait for the warm-up thread's import to finish
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
