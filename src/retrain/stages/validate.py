"""Stage `validate`: the dataset's Great Expectations suite and the PII guard on the raw data.

Writes a JSON summary (always, pass or fail) and Data Docs HTML; a blocking failure stops
the pipeline with one line naming the file, the column and the expectation (or, for a feature
column that looks like personal data, the kind of data it looks like). A batch put into the
raw data by hand, not through ingest, meets the same byte checks and data contract ingest
applies (one line naming file and column, as ingest words it), so it cannot reach `prepare`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from retrain.config import Params
from retrain.data.io import read_file, table_files
from retrain.errors import ConfigMismatch, DataError, ValidationFailed
from retrain.files import write_json
from retrain.stages._common import stage_main
from retrain.validation.config_check import check_schema
from retrain.validation.raw import bytes_problems, contract_problems, validate_raw
from retrain.validation.suite import DocsSite, ValidationResult, check_suite, load_suite_json


def _error_summary(source: str, suite: Path, message: str) -> dict[str, object]:
    return {"source": source, "suite": suite.stem, "success": False, "headline": message}


def run(params: Params) -> list[ValidationResult]:
    """Validate every raw file; raise ValidationFailed on the first blocking failure."""
    paths, suite = params.paths, params.dataset.suite
    shutil.rmtree(paths.data_docs, ignore_errors=True)  # no stale pages from an earlier run
    try:
        files = table_files(paths.raw_data)
        frames = [(f, read_file(f)) for f in files]
    except DataError as err:
        write_json(paths.validation_summary, {"tables": [_error_summary("", suite, str(err))]})
        raise ValidationFailed(str(err)) from None
    try:
        # params.yaml against the data first: a wrong key fails here, naming key and column.
        warnings = check_schema(params.dataset, frames)
        check_suite(suite, load_suite_json(suite))
    except ConfigMismatch as err:
        write_json(paths.validation_summary, {"tables": [_error_summary("", suite, str(err))]})
        raise
    for warning in warnings:
        print(f"warning: {warning}")
    max_field_bytes = params.ingest.max_field_bytes
    for problem in bytes_problems([(str(f), f) for f, _ in frames], max_field_bytes):
        write_json(paths.validation_summary, {"tables": [_error_summary("", suite, problem)]})
        raise ValidationFailed(problem)

    # One Data Docs site, a validation per file: accepted batches are listed beside the table.
    site = DocsSite(paths.data_docs)
    results = [validate_raw(df, params, str(file), data_docs_dir=site) for file, df in frames]
    site.build()
    summary = {
        "success": all(r.success for r in results),
        "tables": [r.to_dict() for r in results],
    }
    write_json(paths.validation_summary, summary)
    for r in results:
        print(r.headline())
        for f in r.failures:
            if not f.blocking:
                print(f"  warning: {f.message(r.source)}")
    failed = [r for r in results if not r.success]
    if failed:
        raise ValidationFailed(failed[0].headline())
    contract = contract_problems([(str(f), df) for f, df in frames], params.dataset)
    if contract:
        summary.update(success=False, contract=contract)
        write_json(paths.validation_summary, summary)
        raise ValidationFailed(contract[0])
    return results


def main() -> None:
    stage_main("validate", run)


if __name__ == "__main__":
    main()
