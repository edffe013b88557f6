"""Typing, de-duplication and missing values of the raw table (the split: `splits.py`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from retrain.config import DatasetSchema
from retrain.errors import DataError
from retrain.task import task_for

TARGET = "__target__"


@dataclass(frozen=True)
class CleanReport:
    rows_in: int
    rows_out: int
    duplicate_rows: int
    duplicate_ids: int
    filled: dict[str, int]

    def to_dict(self) -> dict[str, object]:
        return self.__dict__.copy()


def _numeric(df: pd.DataFrame, col: str, source: str) -> pd.Series:
    converted = pd.to_numeric(df[col], errors="coerce")
    bad = df[col].notna() & converted.isna()
    if bad.any():
        example = df.loc[bad, col].iloc[0]
        raise DataError(f"{source}: column {col!r} is not numeric (e.g. {example!r})")
    return converted.astype("float64")


def clean(
    df: pd.DataFrame,
    schema: DatasetSchema,
    fill_values: dict[str, float | int | str],
    *,
    drop_duplicates: bool = True,
    source: str = "raw data",
) -> tuple[pd.DataFrame, CleanReport]:
    """Return the declared columns with numeric types, the task's target (retrain.task: 0/1,
    a class index or a number) and documented gaps filled.

    Args:
        df: the validated raw table.
        schema: declared columns, target and positive class.
        fill_values: per-column values for known gaps; other gaps are left for the
            preprocessor, which learns its fill from the training split only.
        drop_duplicates: drop repeated rows and repeated ids (first one kept).
        source: named in error messages.
    """
    missing = [c for c in schema.columns if c not in df.columns]
    if missing:
        raise DataError(f"{source}: column {missing[0]!r} is missing")
    unknown_fill = sorted(set(fill_values) - set(schema.features))
    if unknown_fill:
        raise DataError(
            f"params.yaml: prepare.fill_values names unknown column {unknown_fill[0]!r}"
        )
    out = df[schema.columns].copy()
    rows_in = len(out)
    for col in schema.numeric:
        out[col] = _numeric(out, col, source)
    for col in schema.categorical:
        out[col] = out[col].astype("string").astype(object).where(out[col].notna(), None)
    out[TARGET] = task_for(schema).encode(out[schema.target], source)
    out = out.drop(columns=[schema.target])

    dup_rows = dup_ids = 0
    if drop_duplicates:
        before = len(out)
        out = out.drop_duplicates()
        dup_rows = before - len(out)
        if schema.id_column:
            before = len(out)
            out = out.drop_duplicates(subset=[schema.id_column], keep="first")
            dup_ids = before - len(out)

    filled = {}
    for col, value in fill_values.items():
        gaps = out[col].isna()
        filled[col] = int(gaps.sum())
        out.loc[gaps, col] = value
    out = out.reset_index(drop=True)
    return out, CleanReport(rows_in, len(out), dup_rows, dup_ids, filled)


def targets(df: pd.DataFrame) -> np.ndarray:
    return df[TARGET].to_numpy(dtype=np.float32)
