"""The one check of raw data, for every caller: the DVC stage, ingest, check-pr, predict, CLI.

The dataset's suite, the schema's checks and the PII guard, all from params; a caller cannot
forget the guard because nothing here lets it be skipped. For the pinned files as a whole
(the `validate` stage and `check-pr`, where a batch may arrive by hand, not through ingest):
the same byte checks and data contract ingest applies to each batch (`data_problems`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import pandas as pd

from retrain.config import DatasetSchema, Params
from retrain.validation.contract import Reference, contract_problem
from retrain.validation.fields import file_problem
from retrain.validation.suite import DocsSite, ValidationResult, validate_frame


def validate_raw(
    df: pd.DataFrame,
    params: Params,
    source: str,
    *,
    data_docs_dir: Path | DocsSite | None = None,
    scoring: bool = False,
) -> ValidationResult:
    """Validate a raw table against `params.dataset`: suite, declared columns, PII guard.

    Args:
        df: the table, as read from `source`.
        params: the project's params; the suite, the schema and `validate` come from it.
        source: the file the table came from; every message names it.
        data_docs_dir: where to build Data Docs HTML, or None for none.
        scoring: the table is to be scored, so the target column may be absent.

    Returns:
        The result; `success` is False on any blocking problem, and `headline()` names the
        first one in one line.
    """
    schema = params.dataset
    return validate_frame(
        df,
        schema.suite,
        source,
        data_docs_dir=data_docs_dir,
        partial_unexpected_count=params.validate_.partial_unexpected_count,
        schema=schema,
        optional_columns=[schema.target] if scoring else (),
    )


def contract_problems(
    tables: Sequence[tuple[str, pd.DataFrame]],
    schema: DatasetSchema,
    failed: Collection[str] = (),
) -> list[str]:
    """Each file of the pinned data against the others, by the data contract ingest applies.

    With no record of which file came last, the files are taken largest first (ties in name
    order), each judged against those before it: the pinned table is the bulk and a batch is
    smaller, so of two files sharing ids the smaller one is named, as ingest would name the
    batch. A file the suite already failed (`failed`, by source) is not judged again and
    lends only its ids (its column kinds are not to be trusted).

    Args:
        tables: (source, table as read), the source naming the file in messages.
        schema: the dataset section (id column, numeric columns).
        failed: sources whose suite or PII check failed.

    Returns:
        One line per file that breaks the contract (its first problem), naming file and column.
    """
    id_column = schema.id_column
    ref, problems = Reference(), []
    for source, df in sorted(tables, key=lambda t: (-len(t[1]), t[0])):
        if source in failed:
            if id_column and id_column in df.columns:
                ref.ids.update(df[id_column].dropna().tolist())
            continue
        problem = contract_problem(df, source, schema, ref)
        if problem is not None:
            problems.append(problem)
        ref.add(df, id_column)
    return problems


def bytes_problems(files: Sequence[tuple[str, Path]], max_field_bytes: int) -> list[str]:
    """The byte checks ingest makes before reading a batch (CSV: UTF-8, control bytes such
    as a NUL the CSV reader would cut a value at, layout; both formats: value sizes), one
    line per file that fails them."""
    problems = []
    for source, path in files:
        problem = file_problem(path, source, max_field_bytes)
        if problem is not None:
            problems.append(problem)
    return problems
