"""The byte-level checks of a table file, CSV or Parquet, before any table reader.

`ingest.max_field_bytes` bounds one value of either format: a Parquet string or binary value
of a megabyte is as much a fault of the producer as a CSV field of one (and would be carried
into every split, report and drift page). The CSV checks live in `csvtext`; this module adds
Parquet's and is the one entry point for ingest, the `validate` stage and `check-pr` (in
`validation`, so the stage's code stays inside its dvc.yaml deps).
"""

from __future__ import annotations

from pathlib import Path

from retrain.validation.csvtext import csv_problem

_LIMIT_KEY = "params.yaml ingest.max_field_bytes"


def parquet_problem(path: Path, name: str, max_field_bytes: int) -> str | None:
    """One line naming the column and data row of the first string or binary value larger
    than `max_field_bytes`, else None (also for a file pyarrow cannot read: the reader's own
    check says why)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception:  # not readable Parquet: read_file names the cause
        return None
    for column, values in zip(table.column_names, table.columns, strict=True):
        kind = values.type
        if pa.types.is_dictionary(kind):
            values, kind = values.cast(kind.value_type), kind.value_type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)) and not (
            pa.types.is_binary(kind) or pa.types.is_large_binary(kind)
        ):
            continue
        sizes = pc.binary_length(values)
        largest = pc.max(sizes).as_py()
        if largest is not None and largest > max_field_bytes:
            row = pc.index(pc.greater(sizes, max_field_bytes), True).as_py() + 1
            return (
                f"{name}: column {column!r} on data row {row} holds a value of {largest} "
                f"bytes, over the limit of {max_field_bytes} ({_LIMIT_KEY})"
            )
    return None


def file_problem(path: Path, name: str, max_field_bytes: int) -> str | None:
    """The byte-level problem of a table file (CSV: UTF-8, control bytes, layout, field
    sizes; Parquet: field sizes), in one line naming `name` and the column, else None."""
    if path.suffix == ".csv":
        return csv_problem(path, name, max_field_bytes)
    if path.suffix in (".parquet", ".pq"):
        return parquet_problem(path, name, max_field_bytes)
    return None
