"""One landed entry: read it safely, judge it against the data contract, place it.

Accepted: a real copy (never a link, never the producer's inode), its columns in the pinned
order, placed atomically in `paths.batches` as `<name>-<md5>.csv|.parquet` (gzip CSV stored
unpacked), its name appended to the arrival order (retrain.data.arrivals). Rejected: the bytes
as landed go to quarantine with the report. Duplicate: the same content (full md5 of the
stored table's bytes, never a name) is already stored. Refused: a link, FIFO, device or
socket, never opened. Skipped: a directory or an unsupported type.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from retrain.config import Params
from retrain.data.arrivals import record_arrival
from retrain.data.io import read_file
from retrain.errors import DataError
from retrain.hashing import file_md5
from retrain.ingest.holdout import Split, split_batch
from retrain.ingest.landing import marker_of, note_unpushed, remove_landed, work_dir
from retrain.ingest.order import to_pinned_order
from retrain.ingest.pinned import load_reference
from retrain.ingest.quarantine import place, quarantine_dir, refuse_entry, stored_copy
from retrain.ingest.results import IngestResult, Status, one_line
from retrain.ingest.staging import NotRegular, copy_regular, count_rows, decompress, entry_type
from retrain.ingest.staging import kind as stored_kind
from retrain.validation.contract import Reference, contract_problem
from retrain.validation.fields import file_problem
from retrain.validation.raw import validate_raw


def judge_table(
    file: Path, params: Params, name: str, ref: Reference
) -> tuple[str | None, dict, pd.DataFrame | None]:
    """(reason or None, report, the table as read) of a staged table: the suite, the PII
    guard, then the rest of the data contract."""
    try:
        df = read_file(file)
    except DataError as err:
        reason = one_line(str(err).replace(str(file), name))
        return reason, {"source": name, "success": False, "headline": reason}, None
    result = validate_raw(df, params, name)
    report = result.to_dict()
    if not result.success:
        return one_line(result.headline()), report, df
    problem = contract_problem(df, name, params.dataset, ref)
    if problem is not None:
        problem = one_line(problem)
        report.update(success=False, headline=problem, contract=problem)
    return problem, report, df


def check_batch(
    file: Path, params: Params, *, source: str | None = None, reference: Reference | None = None
) -> tuple[str | None, dict]:
    """(None, report) when the batch passes the suite, the PII guard and the data contract
    (against `reference`, the pinned data's, when given), else (one-line reason, report).
    `source` names the file in messages (default: `file`)."""
    ref = reference or Reference()
    problem, report, _ = judge_table(file, params, source or str(file), ref)
    return problem, report


def ingest_file(file: Path, params: Params, *, version: bool = True) -> IngestResult:
    """One landed file under the project lock (registry.lock): never while a retrain runs, so
    a retrain's record pins exactly the data its pipeline read; a wait is logged.

    Raises:
        ConfigMismatch: params.yaml disagrees with the pinned data; the file stays landed.
    """
    from retrain.registry import lock

    timeout = params.registry.lock_timeout_s
    with lock.exclusive(params.paths.retrain_lock, file.name, timeout, command="ingest"):
        return handle_entry(file, params, load_reference(params), version=version)


def handle_entry(
    file: Path, params: Params, ref: Reference, *, version: bool = True
) -> IngestResult:
    """Accept, reject, refuse or skip one complete landed entry (the caller checked the
    landing protocol and holds the project lock), in this process's staging folder.

    Args:
        file: the landed entry.
        params: paths, the suite and the limits; paths relative to the repository root (cwd).
        ref: the pinned data's reference (`load_reference`); an accepted batch is added.
        version: re-pin data.dvc (and the quarantine) and push after placing the file (off
            for dry runs and unit tests; the next versioned run pushes it).
    """
    from retrain.ingest.versioning import pin_raw_data

    work = work_dir(params)
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = _handle(file, params, work, ref)
    finally:
        for child in work.iterdir():
            if child.name != marker_of(file).name:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    if version and result.status in ("accepted", "rejected", "refused"):
        pin_raw_data(params)
    return result


def _handle(file: Path, params: Params, work: Path, ref: Reference) -> IngestResult:
    name = file.name
    what = entry_type(os.lstat(file).st_mode)  # before any open: a FIFO would block it
    if what == "a directory":
        return IngestResult(str(file), "skipped", f"{name}: a directory, not a file", None, "")
    if what is not None:
        return refuse_entry(file, what, params, work)
    kind = stored_kind(name)
    if kind is None:
        reason = f"{name}: unsupported file type; land .csv, .csv.gz or .parquet"
        return IngestResult(str(file), "skipped", reason, None, "")
    original = work / name
    try:
        copy_regular(file, original)
    except NotRegular as err:  # replaced by a link, FIFO ... since we looked
        return refuse_entry(file, str(err), params, work)
    except OSError as err:
        if err.errno == errno.ELOOP:  # replaced by a link since we looked
            return refuse_entry(file, "a symbolic link", params, work)
        return IngestResult(str(file), "skipped", f"{name}: unreadable ({err.strerror})", None, "")
    return _judge(file, original, kind, params, work, ref)


@dataclass(frozen=True)
class _Staged:
    """A landed file in this process's staging folder, on its way to a decision."""

    file: Path  # the landed entry
    original: Path  # our copy of its bytes, as landed (what quarantine keeps)
    table: Path  # the table judged and stored: unpacked, columns in the pinned order
    stem: str
    stored: str  # the stored suffix: .csv or .parquet
    md5: str = ""  # of the table (of the bytes as landed when no table could be made)
    rows: int | None = None  # data lines landed

    def result(self, status: Status, reason: str, destination: Path | None) -> IngestResult:
        where = None if destination is None else str(destination)
        return IngestResult(str(self.file), status, reason, where, self.md5, self.rows)


def _stage_table(staged: _Staged, params: Params, ref: Reference) -> tuple[_Staged, str | None]:
    """The table to judge, from the landed bytes (the size limit, then gunzip or a link, then
    the pinned column order), with its md5 and rows; or a reason it cannot be made."""
    name, limit = staged.file.name, params.ingest.max_file_bytes
    size = staged.original.stat().st_size
    problem = None
    if size > limit:
        problem = (
            f"{name}: {size} bytes, over the limit of {limit} (params.yaml ingest.max_file_bytes)"
        )
    elif name.lower().endswith(".gz"):
        problem = decompress(staged.original, staged.table, name, limit)
    else:
        os.link(staged.original, staged.table)  # both are our private copies
    if problem is None and ref.columns:
        to_pinned_order(staged.table, ref.columns)
    packed = name.lower().endswith(".gz")
    source = staged.table if problem is None else staged.original
    rows = None if packed and problem else count_rows(source, staged.stored)
    return replace(staged, md5=file_md5(source), rows=rows), problem


def _judge(
    file: Path, original: Path, kind: tuple[str, str], params: Params, work: Path, ref: Reference
) -> IngestResult:
    stem, stored = kind
    table = work / "table" / f"{stem}{stored}"
    table.parent.mkdir()
    staged, problem = _stage_table(_Staged(file, original, table, stem, stored), params, ref)
    split = None
    if problem is None:
        seen = stored_copy(params.paths.batches, table, staged.md5)
        if seen is None:  # a batch split before: its rows that train are what is stored
            split = split_batch(table, params, work / "split")
            seen = _stored_split(split, params)
        if seen is not None:
            remove_landed(file)
            reason = f"{file.name}: already ingested as {seen} (same content)"
            return staged.result("duplicate", reason, seen)
        problem = file_problem(table, file.name, params.ingest.max_field_bytes)
    report: dict[str, Any] = {"source": file.name, "success": False, "headline": problem}
    df = None
    if problem is None:
        problem, report, df = judge_table(table, params, file.name, ref)
    report["rows"] = staged.rows
    note_unpushed(params)
    if problem is not None:
        folder = f"{stem}-{staged.md5[:12]}"
        dest = quarantine_dir(params, work, folder, problem, report, original)
        remove_landed(file)
        return staged.result("rejected", problem, dest / file.name)
    dest = params.paths.batches / f"{stem}-{staged.md5[:12]}{stored}"
    if dest.exists():  # other bytes under the same short name: never overwrite them
        dest = dest.with_name(f"{stem}-{staged.md5}{stored}")
    reason = report["headline"]
    record_arrival(params.paths.batches, dest.name)  # the drift stage's "newest" (arrivals)
    if split is None:
        place(table, dest)
    else:
        reason += _place_split(split, dest, params)
    remove_landed(file)
    if df is not None:
        ref.add(df, params.dataset.id_column)  # the next batch of this run must not reuse ids
    result = staged.result("accepted", reason, dest)
    if split is None:
        return result
    held = str(params.paths.holdout / dest.name)
    return replace(result, holdout=held, holdout_rows=split.holdout_rows)


def _stored_split(split: Split | None, params: Params) -> Path | None:
    """The stored batch holding exactly `split`'s rows that train, if any; its held-out rows
    are placed again when an ingest killed between the two placements left them out."""
    if split is None:
        return None
    seen = stored_copy(params.paths.batches, split.train, file_md5(split.train))
    held = params.paths.holdout / seen.name if seen is not None else None
    if held is not None and not held.exists():
        place(split.holdout, held)
    return seen


def _place_split(split: Split, dest: Path, params: Params) -> str:
    """Place the rows that train at `dest`, then the held-out rows beside it in the holdout
    (that order: a kill between the two is completed by the next ingest, `_stored_split`);
    the words the result's reason adds."""
    place(split.train, dest)
    place(split.holdout, params.paths.holdout / dest.name)
    return (
        f"; {split.train_rows} rows to train on, {split.holdout_rows} to the holdout "
        f"(ingest.holdout_share {params.ingest.holdout_share})"
    )
