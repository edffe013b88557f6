"""Cheap vectorised pandas checks that prove an expectation passes, so GE need not run it.

Great Expectations costs tens of times what the same checks cost in pandas (bench/validation.py):
it copies the frame per metric and builds a detailed result for every expectation. Most
batches pass, so `validate_frame` asks `passes` first and hands GE only the expectations it
could not prove: the failures, whose detail (counts, examples) GE computes as before.

`passes` is conservative by construction: True only where GE would report success for the
same expectation, kwargs and frame; anything it does not cover (an expectation type, a kwarg,
an extension dtype, a missing column, an empty frame) is False, which only means "ask GE".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

Check = Callable[[pd.DataFrame, dict[str, Any]], bool]


def _mostly_ok(considered: int, unexpected: int, mostly: float | None) -> bool:
    if mostly is None:
        return unexpected == 0
    # The same arithmetic as GE's _mostly_success, so a ratio at the boundary agrees.
    return (float(considered) - float(unexpected)) / float(considered) >= mostly


def _column(df: pd.DataFrame, kwargs: dict[str, Any]) -> pd.Series:
    column = df[kwargs["column"]]
    condition = kwargs.get("row_condition")
    if condition is not None:
        # GE filters with DataFrame.query(condition, parser="pandas"), which is .loc[eval(...)].
        column = column.loc[df.eval(condition, parser="pandas")]
    return column


def _numeric(column: pd.Series) -> bool:
    return isinstance(column.dtype, np.dtype) and column.dtype.kind in "iuf"


def _columns_match(df: pd.DataFrame, kwargs: dict[str, Any]) -> bool:
    return kwargs.get("exact_match", True) is True and set(df.columns) == set(kwargs["column_set"])


def _row_count(df: pd.DataFrame, kwargs: dict[str, Any]) -> bool:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    return (low is None or len(df) >= low) and (high is None or len(df) <= high)


def _not_null(df: pd.DataFrame, kwargs: dict[str, Any]) -> bool:
    column = _column(df, kwargs)
    return len(column) > 0 and _mostly_ok(
        len(column), int(column.isna().sum()), kwargs.get("mostly")
    )


def _unique(df: pd.DataFrame, kwargs: dict[str, Any]) -> bool:
    column = _column(df, kwargs).dropna()
    return len(column) > 0 and bool(column.is_unique)


def _in_set(df: pd.DataFrame, kwargs: dict[str, Any]) -> bool:
    column = _column(df, kwargs).dropna()
    return len(column) > 0 and bool(column.isin(kwargs["value_set"]).all())


def _between(df: pd.DataFrame, kwargs: dict[str, Any]) -> bool:
    column = _column(df, kwargs)
    if not _numeric(column):
        return False
    values = column.dropna()
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    return (
        len(values) > 0
        and (low is None or bool((values >= low).all()))
        and (high is None or bool((values <= high).all()))
    )


def _in_type_list(df: pd.DataFrame, kwargs: dict[str, Any]) -> bool:
    # GE checks a non-object numpy dtype as a whole; object columns it checks value by value.
    dtype = df[kwargs["column"]].dtype
    return isinstance(dtype, np.dtype) and dtype.kind != "O" and dtype.name in kwargs["type_list"]


def _mean_between(df: pd.DataFrame, kwargs: dict[str, Any]) -> bool:
    column = df[kwargs["column"]]
    if not _numeric(column) or column.notna().sum() == 0:
        return False
    mean = float(column.mean())
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    return (low is None or mean >= low) and (high is None or mean <= high)


# Each covered type with the kwargs its check understands; any other kwarg means "ask GE".
_ROWS = {"row_condition", "condition_parser"}
CHECKS: dict[str, tuple[Check, set[str]]] = {
    "expect_table_columns_to_match_set": (_columns_match, {"column_set", "exact_match"}),
    "expect_table_row_count_to_be_between": (_row_count, {"min_value", "max_value"}),
    "expect_column_values_to_not_be_null": (_not_null, {"column", "mostly", *_ROWS}),
    "expect_column_values_to_be_unique": (_unique, {"column", *_ROWS}),
    "expect_column_values_to_be_in_set": (_in_set, {"column", "value_set", *_ROWS}),
    "expect_column_values_to_be_between": (_between, {"column", "min_value", "max_value", *_ROWS}),
    "expect_column_values_to_be_in_type_list": (_in_type_list, {"column", "type_list"}),
    "expect_column_mean_to_be_between": (_mean_between, {"column", "min_value", "max_value"}),
}


def passes(df: pd.DataFrame, expectation: dict[str, Any]) -> bool:
    """True only if Great Expectations would certainly report `expectation` as a success.

    Args:
        df: the table being validated.
        expectation: one entry of a suite's "expectations" list, as saved in JSON.
    """
    if not isinstance(expectation, dict):
        return False
    covered = CHECKS.get(str(expectation.get("type")))
    kwargs = expectation.get("kwargs") or {}
    if covered is None or not set(kwargs) <= covered[1]:
        return False
    condition = kwargs.get("row_condition")
    if condition is not None and not (
        isinstance(condition, str) and kwargs.get("condition_parser") == "pandas"
    ):
        return False
    if "column" in kwargs and kwargs["column"] not in df.columns:
        return False
    try:
        return covered[0](df, kwargs)
    except Exception:  # a check that cannot decide hands the expectation to GE, never fails
        return False


def _row_not_null(df: pd.DataFrame, kwargs: dict[str, Any]) -> pd.Series:
    return df[kwargs["column"]].isna()


def _row_in_set(df: pd.DataFrame, kwargs: dict[str, Any]) -> pd.Series:
    column = df[kwargs["column"]]
    return column.notna() & ~column.isin(kwargs["value_set"])


def _row_between(df: pd.DataFrame, kwargs: dict[str, Any]) -> pd.Series:
    values = pd.to_numeric(df[kwargs["column"]], errors="coerce")
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    bad = pd.Series(False, index=df.index)
    if low is not None:
        bad |= values < low
    if high is not None:
        bad |= values > high
    return bad


# Expectations a single row can break, whatever the other rows hold (no `mostly`: a share is a
# property of the table, not of a row).
ROW_CHECKS: dict[str, Callable[[pd.DataFrame, dict[str, Any]], pd.Series]] = {
    "expect_column_values_to_not_be_null": _row_not_null,
    "expect_column_values_to_be_in_set": _row_in_set,
    "expect_column_values_to_be_between": _row_between,
}


def row_violations(df: pd.DataFrame, expectations: list[dict[str, Any]]) -> np.ndarray:
    """Which rows break a row-level expectation of a suite (its `row_condition` honoured as GE
    does): what a generator must not produce. Expectations on a share (`mostly`), the whole
    table, a column absent from `df` or beyond these types are not row-level and are skipped.
    """
    bad = pd.Series(False, index=df.index)
    for expectation in expectations:
        check = ROW_CHECKS.get(str(expectation.get("type")))
        kwargs = expectation.get("kwargs") or {}
        if check is None or kwargs.get("mostly") is not None:
            continue
        if kwargs.get("column") not in df.columns:
            continue
        hit = check(df, kwargs)
        condition = kwargs.get("row_condition")
        if condition is not None:
            hit &= df.eval(condition, parser="pandas").astype(bool)
        bad |= hit.fillna(False).astype(bool)
    return bad.to_numpy()
