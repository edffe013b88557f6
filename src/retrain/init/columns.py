"""One column at a time: its role (numeric, categorical, left out, id), the positive class of
the target, and which categoricals make good slices — each decision with its reason."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from retrain.init.errors import InitError
from retrain.init.values import is_integer_valued, plain

# A column whose name says it is an identifier (customer_id, CustomerID, uuid, rownames).
ID_NAME = re.compile(r"(^|[_\W])(id|key|uuid|guid|rownames?)$|^rownames?$|[a-z]ID$|Id$", re.I)
# Categorical columns with more distinct values than this are too sparse to one-hot encode:
# they are target + frequency encoded instead (dataset.high_cardinality, retrain.data.encoding).
MAX_LEVELS = 50
# Slices: categoricals with 2..MAX_SLICE_LEVELS levels, the most balanced first.
MAX_SLICE_LEVELS = 8
AFFIRMATIVE = ("1", "true", "yes", "y", "t", "positive", "pos")
# The reasons `classify` gives a feature (written beside it in params.yaml): a re-run
# replaces them, while any other comment a user wrote there is kept.
FEATURE_REASON = re.compile(
    r"(integer|decimal) numbers, \d+ distinct|true/false values|text with \d+ levels"
)


def positive_class(values: pd.Series, given: str | None, target: str) -> tuple[Any, Any, str]:
    """(positive, negative, reason) of a binary target: the given value, else the one value
    that reads as affirmative, else the rarer one."""
    levels = sorted(values.dropna().unique().tolist(), key=str)
    if len(levels) != 2:
        shown = [plain(v) for v in levels[:6]]
        raise InitError(
            f"column {target!r} (target) has {len(levels)} distinct values {shown}; "
            "a binary target has exactly 2"
        )
    if given is not None:
        match = [v for v in levels if str(v) == str(given)]
        if not match:
            raise InitError(
                f"--positive-class {given!r} never occurs in column {target!r} "
                f"(values: {[plain(v) for v in levels]})"
            )
        pos = match[0]
        return plain(pos), plain(next(v for v in levels if v is not pos)), "given"
    affirmative = [v for v in levels if str(v).strip().lower() in AFFIRMATIVE]
    if len(affirmative) == 1:
        pos = affirmative[0]
        reason = f"{pos!r} reads as the affirmative of the two values"
    else:
        counts = values.value_counts()
        pos = min(levels, key=lambda v: (counts[v], str(v)))
        reason = f"{pos!r} is the rarer of the two values ({counts[pos]} of {len(values)} rows)"
    neg = next(v for v in levels if v is not pos)
    return plain(pos), plain(neg), reason


def classify(col: str, s: pd.Series, n: int) -> tuple[str, str]:
    """('numeric'|'categorical'|'left out', reason) for one non-target, non-id column."""
    values = s.dropna()
    distinct = int(values.nunique())
    nulls = n - len(values)
    if distinct == 0:
        return "left out", "empty: every value is missing"
    if distinct == 1:
        return "left out", f"constant ({plain(values.iloc[0])!r}): carries no signal"
    if pd.api.types.is_bool_dtype(s):
        return "categorical", "true/false values"
    if pd.api.types.is_numeric_dtype(s):
        kind = "integer" if is_integer_valued(values) else "decimal"
        gaps = f", {nulls} missing" if nulls else ""
        return "numeric", f"{kind} numbers, {distinct} distinct values{gaps}"
    text = values.astype(str)
    if distinct > MAX_LEVELS and distinct > 0.5 * len(values):
        mean_len = float(text.str.len().mean())
        what = "free text" if mean_len > 30 or text.str.contains(" ").mean() > 0.5 else "a key"
        return "left out", (
            f"{what}: {distinct} distinct values in {len(values)} rows (an identifier or "
            "free text, not a feature)"
        )
    if distinct > MAX_LEVELS:
        # Too sparse to one-hot encode, yet often among the strongest columns (a city, a
        # product): kept, target + frequency encoded (issue 27).
        return "categorical", (
            f"text with {distinct} levels: target + frequency encoded (more than {MAX_LEVELS} "
            "levels; a new level is scored with the prior, not rejected)"
        )
    return "categorical", f"text with {distinct} levels"


def high_cardinality(df: pd.DataFrame, categorical: list[str]) -> list[str]:
    """The categoricals with more than MAX_LEVELS levels: encoded rather than one-hot."""
    return [c for c in categorical if int(df[c].nunique()) > MAX_LEVELS]


def is_id(col: str, s: pd.Series, n: int) -> bool:
    """Its name says it is an identifier and every row has its own (non-decimal) value."""
    return bool(
        ID_NAME.search(col) and s.notna().all() and s.nunique() == n and n > 1
    ) and not pd.api.types.is_float_dtype(s)


def slices(df: pd.DataFrame, categorical: list[str]) -> list[str]:
    """Up to three categoricals with 2..MAX_SLICE_LEVELS levels, the most balanced first."""
    ranked = []
    for col in categorical:
        counts = df[col].value_counts(dropna=True)
        if 2 <= len(counts) <= MAX_SLICE_LEVELS:
            ranked.append((-counts.min() / counts.sum(), len(counts), categorical.index(col), col))
    return [c for *_, c in sorted(ranked)][:3]
