"""Read the raw table: a CSV or Parquet file, or a folder of them (batches, in name order)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from retrain.errors import DataError

SUFFIXES = (".csv", ".parquet", ".pq")


def table_files(path: Path) -> list[Path]:
    """The data files behind `path`, a file or a folder, in a stable order."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
        if not files:
            raise DataError(f"{path}: folder holds no {'/'.join(SUFFIXES)} file")
        return files
    if not path.exists():
        raise DataError(f"{path}: not found (run `retrain data fetch` or `dvc pull`)")
    if path.suffix not in SUFFIXES:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; use CSV or Parquet")
    return [path]


def read_file(path: Path) -> pd.DataFrame:
    """Read one CSV/Parquet file; empty or unreadable files raise a one-line DataError."""
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        if path.suffix == ".csv":
            df = pd.read_csv(path)
        else:
            df = pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty") from None
    except Exception as err:  # parsers raise many types; the user needs the file and cause
        cause = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"{path}: unreadable {path.suffix[1:]} file: {cause}") from None
    if df.empty:
        raise DataError(f"{path}: table has no rows")
    return df


def read_table(path: Path | str) -> pd.DataFrame:
    """Read a file, or concatenate every file in a folder (they must share columns)."""
    return concat_tables([(f, read_file(f)) for f in table_files(Path(path))])


def concat_tables(frames: list[tuple[Path, pd.DataFrame]]) -> pd.DataFrame:
    """One table of tables read from files, which must have the same columns in one order."""
    files = [f for f, _ in frames]
    first = list(frames[0][1].columns)
    for f, df in frames[1:]:
        if list(df.columns) != first:
            extra = sorted(set(df.columns) - set(first))
            missing = sorted(set(first) - set(df.columns))
            raise DataError(
                f"{f}: columns differ from {files[0].name} (extra {extra}, missing {missing})"
            )
    tables = [df for _, df in frames]
    return tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True)
