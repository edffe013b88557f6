"""The pinned evaluation set: a seeded share of each labelled batch that no model trains on.

The gate's test split is redrawn from all pinned data at every retrain, and the rows the
champion trained on are left out of it, so after a few retrains little of it is unseen (one
drift retrain was judged on 380 rows). Rows that never enter the training data cannot shrink:
ingest puts `ingest.holdout_share` of each labelled batch in `paths.holdout` (one file per
batch, pinned by its own .dvc file) and the rest in `paths.batches`, and the gate scores both
models on the test split's unseen rows plus every pinned-holdout row.

Which rows: each row with a label gets a key, the sha256 of `seed` and the row's id (or of its
feature values where the table has no id column); the round(share x labelled rows) rows with
the lowest keys are held out, at least one row always trains. The same rows ingested again,
under any name, in any order, pick the same rows; the count is exact, not a coin per row.
Values are copied as text (CSV) or as stored (Parquet), never re-typed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from retrain.config import Params
from retrain.validation.csvtext import field_limit

# Values pandas' CSV reader reads as missing (the common ones): such a target is no label.
_MISSING = {"", "na", "n/a", "nan", "-nan", "null", "none", "#n/a", "<na>"}


@dataclass(frozen=True)
class Split:
    """A staged table cut in two: the rows that train and the rows held out."""

    train: Path
    holdout: Path
    train_rows: int
    holdout_rows: int


def row_key(seed: int, values: Sequence[str]) -> bytes:
    """A row's rank in the draw: the sha256 of the seed and its key values (stable anywhere,
    unlike Python's or pandas' hashes)."""
    return hashlib.sha256("\x1f".join([str(seed), *values]).encode()).digest()


def held_out(keys: Sequence[bytes | None], share: float) -> list[int]:
    """Indices (ascending) of the rows held out: the round(share x eligible) lowest keys, at
    most all rows but one (a batch always leaves rows to train); None marks a row that is not
    eligible (no label)."""
    ranked = sorted((k, i) for i, k in enumerate(keys) if k is not None)
    n = min(round(share * len(ranked)), len(keys) - 1)
    return sorted(i for _, i in ranked[: max(n, 0)])


def _key_columns(params: Params, header: Sequence[str]) -> list[str] | None:
    """The id column where the table has it, else the features; None when a column is
    missing (the contract rejects the batch: nothing to split)."""
    schema = params.dataset
    wanted = [schema.id_column] if schema.id_column else schema.features
    return wanted if all(c in header for c in [*wanted, schema.target]) else None


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip().lower() in _MISSING


def _keys(params: Params, columns: dict[str, list[Any]], n: int) -> list[bytes | None] | None:
    """One key per row (None: no label), or None when the table has no label column."""
    on = _key_columns(params, list(columns))
    if on is None:
        return None
    target = columns[params.dataset.target]
    return [
        None if _missing(target[i]) else row_key(params.seed, [str(columns[c][i]) for c in on])
        for i in range(n)
    ]


def _split_csv(table: Path, params: Params, out: Path) -> Split | None:
    with field_limit(table.stat().st_size):
        try:
            rows = list(csv.reader(io.StringIO(table.read_text(encoding="utf-8"), newline="")))
        except (OSError, UnicodeDecodeError, csv.Error):
            return None  # its checks say why; a rejected batch is never split
    if not rows:
        return None
    header, body = rows[0], [r for r in rows[1:] if r]  # a blank line is no row (pandas)
    if any(len(r) != len(header) for r in body):
        return None  # a ragged row: the CSV check rejects the batch
    columns = {name: [r[j] for r in body] for j, name in enumerate(header)}
    keys = _keys(params, columns, len(body))
    if keys is None:
        return None
    picked = set(held_out(keys, params.ingest.holdout_share))
    if not picked:
        return None
    parts = {"train": [header], "holdout": [header]}
    for i, row in enumerate(body):
        parts["holdout" if i in picked else "train"].append(row)
    paths = {}
    for part, part_rows in parts.items():
        text = io.StringIO(newline="")
        csv.writer(text, lineterminator="\n").writerows(part_rows)
        paths[part] = out / part / table.name
        paths[part].parent.mkdir(parents=True, exist_ok=True)
        paths[part].write_text(text.getvalue(), encoding="utf-8", newline="")
    return Split(paths["train"], paths["holdout"], len(body) - len(picked), len(picked))


def _split_parquet(table: Path, params: Params, out: Path) -> Split | None:
    import pyarrow.parquet as pq

    try:
        data = pq.read_table(table)
    except Exception:  # not readable Parquet: the reader's check says why
        return None
    keys = _keys(params, {n: data.column(n).to_pylist() for n in data.column_names}, len(data))
    if keys is None:
        return None
    picked = held_out(keys, params.ingest.holdout_share)
    if not picked:
        return None
    chosen = set(picked)
    rest = [i for i in range(len(data)) if i not in chosen]
    paths = {"train": out / "train" / table.name, "holdout": out / "holdout" / table.name}
    for part, rows in (("train", rest), ("holdout", picked)):
        paths[part].parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(data.take(rows), paths[part])
    return Split(paths["train"], paths["holdout"], len(rest), len(picked))


def split_batch(table: Path, params: Params, out: Path) -> Split | None:
    """Cut a staged table (columns in the pinned order) into the rows that train and the rows
    held out, written under `out`; None when nothing is held out (holdout_share 0, no label
    column, no labelled row, a table too small, or one its checks will reject)."""
    if params.ingest.holdout_share <= 0:
        return None
    if table.suffix == ".parquet":
        return _split_parquet(table, params, out)
    return _split_csv(table, params, out)


def landed_rows(stored: Path, held: Path | None) -> pd.DataFrame:
    """An accepted batch's rows as landed: the rows stored to train (`stored`), then those
    held out for the gate (`held`, the result's `holdout`; None when none were): what a
    check of the batch's labels (the monitor flow's canary evidence) reads."""
    from retrain.data.io import concat_tables, read_file

    files = [stored, *([held] if held is not None else [])]
    return concat_tables([(f, read_file(f)) for f in files])


def holdout_files(params: Params) -> list[Path]:
    """The pinned evaluation set's tables, in name order ([] when there is none)."""
    from retrain.data.io import SUFFIXES

    folder = params.paths.holdout
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and not p.is_symlink()
        and not p.name.startswith(".")
        and p.suffix in SUFFIXES
    )
