"""The draft Great Expectations suite: rules as a data table, one row per expectation kind
(what it applies to, when, its arguments, its severity and the `meta.why` a reviewer reads),
and a small builder that runs every rule over the table's columns in order."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from retrain.init.profile import Profile
from retrain.init.values import decimals, is_integer_valued, plain

NUMERIC_TYPES = ["int64", "int32", "int16", "int8", "float64", "float32", "Int64", "Float64"]


@dataclass(frozen=True)
class Subject:
    """What a rule looks at: the whole table, or one column in its role."""

    scope: str  # "table", "target", "id", "numeric" or "categorical"
    column: str | None
    df: pd.DataFrame
    p: Profile

    @property
    def values(self) -> pd.Series:
        assert self.column is not None
        return self.df[self.column].dropna()

    @property
    def blank(self) -> float:
        assert self.column is not None
        return float(self.df[self.column].isna().mean())

    @property
    def tolerated(self) -> float:
        """The share of blanks accepted in a column that has some."""
        return min(1.0, self.blank + max(0.01, self.blank / 2))

    @property
    def low(self) -> float:
        return float(self.values.min())

    @property
    def high(self) -> float:
        return float(self.values.max())

    @property
    def n(self) -> int:
        return self.p.n_rows


def _bound(value: float, integer: bool, places: int, up: bool) -> float | int:
    if integer:
        return int(math.ceil(value) if up else math.floor(value))
    step = 10.0**-places
    rounded = (math.ceil(value / step) if up else math.floor(value / step)) * step
    return round(rounded, places)


def _drift_range(s: Subject) -> dict[str, Any]:
    """The profiled range widened by 10% of its span, rounded outwards as the column is
    written (never below 0 for a column that never is)."""
    integer = is_integer_valued(s.values)
    places = 0 if integer else decimals(s.values)
    margin = 0.1 * (s.high - s.low)
    lo = _bound(s.low - margin, integer, places, up=False)
    hi = _bound(s.high + margin, integer, places, up=True)
    if s.low >= 0:
        lo = max(lo, 0)
    return {"min_value": lo, "max_value": hi, "mostly": 0.99}


def _levels(s: Subject) -> list[Any]:
    return sorted((plain(v) for v in s.values.unique()), key=str)


@dataclass(frozen=True)
class Rule:
    """One kind of expectation: the GE class, the scopes it applies to, when, its arguments
    (beyond `column`), its severity and why it exists."""

    expectation: str
    scopes: tuple[str, ...]
    severity: str
    args: Callable[[Subject], dict[str, Any]]
    why: Callable[[Subject], str]
    when: Callable[[Subject], bool] = lambda s: True


FEATURES = ("numeric", "categorical")

# One row per expectation kind, in the order a subject's expectations appear in the suite.
# Laid out as a table (`fmt: skip`): the class, scopes and severity of a row on one line.
RULES: tuple[Rule, ...] = (
    Rule(
        "ExpectTableColumnsToMatchSet", ("table",), "critical",
        lambda s: {"column_set": sorted(str(c) for c in s.df.columns), "exact_match": True},
        lambda s: f"The {len(s.df.columns)} columns of the profiled table; a missing or extra "
        "column is a schema change that needs a reviewed suite and params change.",
    ),
    Rule(
        "ExpectTableRowCountToBeBetween", ("table",), "warning",
        lambda s: {"min_value": min(100, s.n), "max_value": 100 * s.n},
        lambda s: f"The profiled table has {s.n} rows; a file under {min(100, s.n)} rows is "
        f"likely a truncated export, one over {100 * s.n} a different extract.",
    ),
    Rule(
        "ExpectColumnValuesToNotBeNull", ("target",), "critical",
        lambda s: {}, lambda s: "Every training row needs a label.",
    ),
    Rule(
        "ExpectColumnValuesToBeInSet", ("target",), "critical",
        lambda s: {"value_set": sorted([s.p.negative_class, s.p.positive_class], key=str)},
        lambda s: f"The target is binary: {s.p.negative_class!r} or the positive class "
        f"{s.p.positive_class!r}.",
        when=lambda s: s.p.task == "binary",
    ),
    Rule(
        "ExpectColumnValuesToBeInSet", ("target",), "critical",
        lambda s: {"value_set": list(s.p.classes)},
        lambda s: f"The {len(s.p.classes)} classes of dataset.classes, one output of the model "
        "each; a row of another class cannot be trained on: add the class to dataset.classes "
        "(and retrain) or fix the export.",
        when=lambda s: s.p.task == "multiclass",
    ),
    Rule(
        "ExpectColumnValuesToBeInTypeList", ("target",), "critical",
        lambda s: {"type_list": NUMERIC_TYPES},
        lambda s: "The regression target is a number; text here means a broken export or a "
        "shifted column.",
        when=lambda s: s.p.task == "regression",
    ),
    Rule(
        "ExpectColumnValuesToBeBetween", ("target",), "warning",
        _drift_range,
        lambda s: f"Profiled range of the target [{plain(s.low)}, {plain(s.high)}] widened by "
        "10% of its span: values beyond it are target drift worth a look, not an error.",
        when=lambda s: s.p.task == "regression",
    ),
    Rule(
        "ExpectColumnValuesToNotBeNull", ("id",), "critical",
        lambda s: {}, lambda s: "Rows are tracked, de-duplicated and explained by their id.",
    ),
    Rule(
        "ExpectColumnValuesToBeUnique", ("id",), "critical",
        lambda s: {},
        lambda s: "A repeated id means a duplicated or merged export, which would leak rows "
        "between the train and test splits.",
    ),
    Rule(
        "ExpectColumnValuesToNotBeNull", FEATURES, "critical",
        lambda s: {"mostly": 0.99},
        lambda s: "Never blank in the profiled table; up to 1% blanks are tolerated "
        "(the preprocessor fills them), more means a broken export.",
        when=lambda s: s.blank == 0,
    ),
    Rule(
        "ExpectColumnValuesToNotBeNull", FEATURES, "critical",
        lambda s: {"mostly": round(1 - s.tolerated, 4)},
        lambda s: f"{s.blank:.2%} blank in the profiled table; up to {s.tolerated:.2%} is "
        "tolerated, more means the gap is growing.",
        when=lambda s: s.blank > 0,
    ),
    Rule(
        "ExpectColumnValuesToBeInTypeList", ("numeric",), "critical",
        lambda s: {"type_list": NUMERIC_TYPES},
        lambda s: "The model reads this column as a number; text here means a broken "
        "export or a shifted column.",
    ),
    Rule(
        "ExpectColumnValuesToBeBetween", ("numeric",), "critical",
        lambda s: {"min_value": 0},
        lambda s: "Never negative in the profiled table; a sign flip is a bug.",
        when=lambda s: s.low >= 0,
    ),
    Rule(
        "ExpectColumnValuesToBeBetween", ("numeric",), "warning",
        _drift_range,
        lambda s: f"Profiled range [{plain(s.low)}, {plain(s.high)}] widened by 10% of "
        "its span: values beyond it are drift worth a look, not an error.",
    ),
    Rule(
        "ExpectColumnValuesToBeInSet", ("categorical",), "critical",
        lambda s: {"value_set": _levels(s)},
        lambda s: f"The {len(_levels(s))} levels seen in the profiled table; an unseen "
        "level has no learned encoding, so it needs review before training.",
        when=lambda s: s.column not in s.p.high_cardinality,
    ),
    Rule(
        "ExpectColumnValuesToBeInSet", ("categorical",), "warning",
        lambda s: {"value_set": _levels(s), "mostly": 0.9},
        lambda s: f"The {len(_levels(s))} levels seen in the profiled table. Target + "
        "frequency encoded (dataset.high_cardinality): a new level is normal here and is "
        "scored with the prior, so it is reported, never blocking; more than 10% of rows "
        "in new levels is worth a look (a recoded or shifted column).",
        when=lambda s: s.column in s.p.high_cardinality,
    ),
)  # fmt: skip


def subjects(df: pd.DataFrame, p: Profile) -> Iterator[Subject]:
    """The table, the target, the id, then each feature: the order of the suite."""
    yield Subject("table", None, df, p)
    yield Subject("target", p.target, df, p)
    if p.id_column:
        yield Subject("id", p.id_column, df, p)
    for col in [*p.numeric, *p.categorical]:
        yield Subject("numeric" if col in p.numeric else "categorical", col, df, p)


def build_suite(df: pd.DataFrame, p: Profile) -> dict[str, Any]:
    """The draft suite as JSON data, built with Great Expectations' expectation classes."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.expectations.metadata_types import FailureSeverity

    expectations = []
    for subject in subjects(df, p):
        for rule in RULES:
            if subject.scope not in rule.scopes or not rule.when(subject):
                continue
            column = {} if subject.column is None else {"column": subject.column}
            expectations.append(
                getattr(gxe, rule.expectation)(
                    **column,
                    **rule.args(subject),
                    severity=FailureSeverity(rule.severity),
                    meta={"why": rule.why(subject)},
                )
            )
    suite = gx.ExpectationSuite(
        name=p.name,
        expectations=expectations,
        meta={
            "dataset": p.name,
            "notes": "Drafted by `retrain init` from the table; review every expectation. "
            "severity critical blocks the pipeline; warning is reported only.",
        },
    )
    return dict(suite.to_json_dict())
