"""Columns in another order are put in the pinned order on landing (the contract's one
repair): `prepare` reads the pinned files only when they share one order, and a batch with the
same columns in another order holds the same data. Values are copied as text, never re-typed.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from retrain.validation.csvtext import field_limit


def _csv_in_order(path: Path, columns: Sequence[str]) -> bool:
    """Rewrite a well-formed CSV with its columns in `columns`' order; False (untouched) when
    it is not a reordering of them or not well-formed (its check then says why)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if not text.endswith("\n"):
        return False  # a cut last line must stay visible to the truncation check
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        return False  # e.g. a field over the parser's limit: the CSV check reports it
    header = rows[0] if rows else []
    if header == list(columns) or sorted(header) != sorted(columns):
        return False
    if any(row and len(row) != len(header) for row in rows):
        return False
    at = [header.index(c) for c in columns]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([row[i] for i in at] if row else [])
    tmp = path.with_name(path.name + ".ordered")
    tmp.write_text(out.getvalue(), encoding="utf-8", newline="")
    os.replace(tmp, path)
    return True


def _parquet_in_order(path: Path, columns: Sequence[str]) -> bool:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception:  # not readable Parquet: the reader's check says why
        return False
    names = list(table.column_names)
    if names == list(columns) or sorted(names) != sorted(columns):
        return False
    tmp = path.with_name(path.name + ".ordered")
    pq.write_table(table.select(list(columns)), tmp)
    os.replace(tmp, path)
    return True


def to_pinned_order(path: Path, columns: Sequence[str]) -> bool:
    """Put a staged table's columns in the pinned order; True when it was rewritten."""
    if path.suffix == ".parquet":
        return _parquet_in_order(path, columns)
    with field_limit(path.stat().st_size):  # what the CSV check reads, this reads too
        return _csv_in_order(path, columns)
