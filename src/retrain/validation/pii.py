"""The PII guard: feature columns that look like personal data are rejected before training.

Deliberately simple and explainable, so a reviewer can predict what it flags. A feature column
is flagged when either

* its **name** says it holds personal data: a token ``email``/``e_mail``; ``name``,
  ``first_name``, ``surname``, ``customer_name`` and the like (but not ``plan_name``); or a
  name ending in ``phone``, ``mobile``, ``telephone`` or ``fax`` (optionally followed by
  ``number``/``no``), so ``phone_service`` is not flagged; or ending in ``id``, ``uuid``,
  ``ssn`` or ``passport`` (an identifier); or
* its **values** do, judged on up to ``SAMPLE`` non-null values of a non-numeric column
  (evenly spaced through the table, so a rerun looks at the same values), when at least
  ``SHARE`` of them match: an e-mail address; a phone number (7 to 15 digits written with
  only ``+ - . ( )`` and spaces); a person's name (two or three capitalised words, in a column
  where most sampled values are distinct); or, for a free-text id, nearly every sampled value
  distinct and mostly not numbers (a category with as many levels as rows is an identifier,
  not a category). Plain decimals such as ``1889.50`` are amounts, not phone numbers.

Numeric columns are judged by their name only. A flagged column that a reviewer has accepted
is listed in ``dataset.pii_allow``; the id column is never a feature (a config error).
Messages never repeat the values found: they would copy personal data into logs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

SAMPLE = 200  # values looked at per column
SHARE = 0.5  # share of sampled values that must look personal
DISTINCT_NAMES = 0.5  # names: share of distinct values among the sample
DISTINCT_ID = 0.95  # free-text ids: share of distinct values among the sample
MIN_FOR_ID = 50  # fewer sampled values say nothing about cardinality

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?[\d\s().-]+")
_DECIMAL = re.compile(r"-?\d+\.\d+")  # 1889.50 is an amount, not a phone number
_PERSON = re.compile(r"[A-Z][a-z'’-]+(?: [A-Z]\.?)?(?: [A-Z][a-z'’-]+){1,2}")
_NAME_RULES = (
    ("e-mail address", re.compile(r"(^|_)e_?mail(_|$)")),
    (
        "person name",
        re.compile(
            r"^(first|last|middle|full|given|family|user|sur|customer|client|contact)?_?name$"
        ),
    ),
    ("phone number", re.compile(r"(^|_)(phone|mobile|telephone|tel|fax)(_?(number|num|no|nr))?$")),
    ("free-text id", re.compile(r"(^|_)(id|uuid|guid|ssn|passport)(_?(number|num|no|nr))?$")),
)


@dataclass(frozen=True)
class PiiFinding:
    """A feature column that looks like personal data, and what gave it away."""

    column: str
    kind: str  # "e-mail address", "phone number", "person name" or "free-text id"
    evidence: str  # "column name", or e.g. "200 of 200 sampled values"

    def message(self, source: str) -> str:
        return (
            f"{source}: column {self.column!r} looks like personal data ({self.kind}, "
            f"{self.evidence}); drop it from dataset.numeric/categorical or, after review, "
            f"list it in dataset.pii_allow"
        )


def _normalised(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _by_name(column: str) -> PiiFinding | None:
    name = _normalised(column)
    for kind, rule in _NAME_RULES:
        if rule.search(name):
            return PiiFinding(column, kind, "column name")
    return None


def _is_phone(value: str) -> bool:
    digits = sum(ch.isdigit() for ch in value)
    if not 7 <= digits <= 15 or _DECIMAL.fullmatch(value):
        return False
    return _PHONE.fullmatch(value) is not None


def _by_values(column: str, values: pd.Series) -> PiiFinding | None:
    sample = values.dropna().astype(str).str.strip()
    sample = sample[sample != ""]
    if sample.empty:
        return None
    if len(sample) > SAMPLE:
        sample = sample.iloc[np.linspace(0, len(sample) - 1, SAMPLE).astype(int)]
    n = len(sample)
    distinct = sample.nunique() / n

    def share(hits: pd.Series) -> tuple[bool, str]:
        count = int(hits.sum())
        return count >= SHARE * n, f"{count} of {n} sampled values"

    checks = (
        ("e-mail address", sample.map(lambda v: _EMAIL.fullmatch(v) is not None), True),
        ("phone number", sample.map(_is_phone), True),
        (
            "person name",
            sample.map(lambda v: _PERSON.fullmatch(v) is not None),
            distinct >= DISTINCT_NAMES,
        ),
    )
    for kind, hits, applies in checks:
        found, evidence = share(hits)
        if applies and found:
            return PiiFinding(column, kind, evidence)
    # Distinct numbers written as text (e.g. amounts in a CSV with blanks) are measurements.
    numeric = float(pd.to_numeric(sample, errors="coerce").notna().mean())
    if n >= MIN_FOR_ID and distinct >= DISTINCT_ID and numeric < SHARE:
        return PiiFinding(column, "free-text id", f"{sample.nunique()} distinct of {n} sampled")
    return None


def find_pii(
    df: pd.DataFrame, columns: Sequence[str], allow: Sequence[str] = ()
) -> list[PiiFinding]:
    """The columns of `columns` present in `df` that look like personal data.

    Args:
        df: the raw table.
        columns: the feature columns to check (the id and target columns are not features).
        allow: columns a reviewer has accepted (``dataset.pii_allow``); never flagged.

    Returns:
        One finding per flagged column, in the order of `columns`.
    """
    findings = []
    for column in columns:
        if column in allow or column not in df.columns:
            continue
        finding = _by_name(column)
        values = df[column]
        if finding is None and not pd.api.types.is_numeric_dtype(values):
            finding = _by_values(column, values)
        if finding is not None:
            findings.append(finding)
    return findings
