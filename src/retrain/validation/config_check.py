"""params.yaml against the data, before any work: one line naming the file, key and column.

A schema that disagrees with the table would otherwise fail late and far from its cause (a
missing target in `prepare`, a text column in the preprocessor, a positive class that never
occurs as a training set with one class, a class not in dataset.classes, a text target for a
regression). The `validate` stage runs this first.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from retrain import PARAMS_FILE
from retrain.config import DatasetSchema
from retrain.errors import ConfigMismatch

# A categorical column holding numbers with more distinct values than this is probably a
# measurement declared under the wrong key (one-hot encoding makes one column per value).
MANY_LEVELS = 20


def _hint(column: str, columns: Sequence[str]) -> str:
    close = difflib.get_close_matches(column, [str(c) for c in columns], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_schema(
    schema: DatasetSchema,
    frames: Sequence[tuple[Path | str, pd.DataFrame]],
    params_file: Path | str = PARAMS_FILE,
    *,
    require_target: bool = True,
) -> list[str]:
    """Check the declared schema against each table; return warnings, raise on errors.

    Args:
        schema: the dataset section of params.yaml.
        frames: (source, table) pairs, e.g. every raw file.
        params_file: named in every message.
        require_target: False for data to be scored, which has no label.

    Raises:
        ConfigMismatch: the first disagreement, in one line naming file, key and column.
    """
    warnings: list[str] = []
    for source, df in frames:
        cols = list(df.columns)
        where = f"is not a column of {source}"
        if require_target or schema.target in df.columns:
            if schema.target not in df.columns:
                raise ConfigMismatch(
                    f"{params_file}: dataset.target: column {schema.target!r} {where}"
                    + _hint(schema.target, cols)
                )
        if schema.id_column and schema.id_column not in df.columns:
            raise ConfigMismatch(
                f"{params_file}: dataset.id_column: column {schema.id_column!r} {where}"
                + _hint(schema.id_column, cols)
                + " (leave id_column out for a table without ids)"
            )
        for key, declared in (("numeric", schema.numeric), ("categorical", schema.categorical)):
            for col in declared:
                if col not in df.columns:
                    raise ConfigMismatch(
                        f"{params_file}: dataset.{key}: column {col!r} {where}" + _hint(col, cols)
                    )
        for col in schema.numeric:
            values = df[col]
            if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
                continue
            parsed = pd.to_numeric(values, errors="coerce")
            text = values.notna() & parsed.isna()
            if text.any():
                example = values[text].iloc[0]
                raise ConfigMismatch(
                    f"{params_file}: dataset.numeric: column {col!r} holds text in {source} "
                    f"({int(text.sum())} of {len(df)} values, e.g. {example!r}); declare it "
                    "under dataset.categorical, or fix the export"
                )
        for col in schema.categorical:
            if col in schema.high_cardinality:
                continue  # encoded, not one-hot: many levels are why it is listed there
            values = df[col]
            if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
                distinct = int(values.nunique())
                if distinct > MANY_LEVELS:
                    warnings.append(
                        f"{params_file}: dataset.categorical: column {col!r} is numeric with "
                        f"{distinct} distinct values in {source}: one-hot encoding makes "
                        f"{distinct} columns; did you mean dataset.numeric?"
                    )
    if require_target:
        _check_target(schema, frames, params_file)
    return warnings


def _check_target(
    schema: DatasetSchema,
    frames: Sequence[tuple[Path | str, pd.DataFrame]],
    params_file: Path | str,
) -> None:
    """The target against the task: binary, its positive class occurs; multiclass, every
    class found is in dataset.classes and every class listed occurs; regression, numbers."""
    if schema.task == "binary":
        _check_positive_class(schema, frames, params_file)
    elif schema.task == "multiclass":
        _check_classes(schema, frames, params_file)
    else:
        for source, df in frames:
            values = df[schema.target]
            text = values.notna() & pd.to_numeric(values, errors="coerce").isna()
            if text.any():
                raise ConfigMismatch(
                    f"{params_file}: dataset.task: regression, but column {schema.target!r} "
                    f"(target) holds text in {source} ({int(text.sum())} of {len(df)} values); "
                    "a regression target must be numeric: fix the export, or use "
                    "`retrain init --task multiclass` for classes"
                )


def _check_classes(
    schema: DatasetSchema,
    frames: Sequence[tuple[Path | str, pd.DataFrame]],
    params_file: Path | str,
) -> None:
    classes = [str(c) for c in schema.classes or ()]
    seen: set[str] = set()
    for source, df in frames:
        found = df[schema.target].dropna().astype(str).unique().tolist()
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise ConfigMismatch(
                f"{params_file}: dataset.classes: column {schema.target!r} (target) of {source} "
                f"has class {unknown[0]!r}, not one of {classes}: add it to dataset.classes "
                "(the order is the model's outputs: append it), or fix the data"
            )
        seen.update(found)
    never = [c for c in classes if c not in seen]
    if never:
        sources = ", ".join(str(s) for s, _ in frames[:3]) + (" ..." if len(frames) > 3 else "")
        raise ConfigMismatch(
            f"{params_file}: dataset.classes: class {never[0]!r} never occurs in column "
            f"{schema.target!r} of {sources}: a class with no rows cannot be learned; remove it"
        )


def _check_positive_class(
    schema: DatasetSchema,
    frames: Sequence[tuple[Path | str, pd.DataFrame]],
    params_file: Path | str,
) -> None:
    seen: set[str] = set()
    for _, df in frames:
        seen.update(df[schema.target].dropna().astype(str).unique().tolist())
    wanted = str(schema.positive_class)
    if wanted in seen:
        return
    sources = ", ".join(str(s) for s, _ in frames[:3]) + (" ..." if len(frames) > 3 else "")
    quoted = ""
    if isinstance(schema.positive_class, bool):
        quoted = " (YAML reads an unquoted yes/no/true/on as a boolean: quote the value)"
    raise ConfigMismatch(
        f"{params_file}: dataset.positive_class: {schema.positive_class!r} never occurs in "
        f"column {schema.target!r} of {sources} (values: {sorted(seen)[:10]}){quoted}"
    )
