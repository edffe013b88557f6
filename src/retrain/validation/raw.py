"""The one check of raw data, for every caller: the DVC stage, ingest, check-pr, predict, CLI.

The dataset's suite, the schema's checks and the PII guard, all from params; a caller cannot
forget the guard because nothing here lets it be skipped.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from retrain.config import Params
from retrain.validation.suite import ValidationResult, validate_frame


def validate_raw(
    df: pd.DataFrame,
    params: Params,
    source: str,
    *,
    data_docs_dir: Path | None = None,
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
