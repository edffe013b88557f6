"""Ingest a landed batch: validate it, then version it with DVC or keep it aside. Nothing is lost.

- accepted: the file moves (bytes unchanged) into `paths.batches`, under a name carrying its
  content hash; `dvc commit` re-pins data.dvc and `dvc push` sends it to the remote.
- rejected: the file moves (bytes unchanged) into `paths.quarantine/<name>-<hash>/` beside
  its validation report (`report.json`) and a one-line `reason.txt`.
- duplicate: a file whose content was already ingested changes nothing; it is removed from
  the landing folder, since its bytes are already versioned.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from retrain.config import Params
from retrain.data.io import read_file
from retrain.errors import DataError
from retrain.hashing import file_md5
from retrain.validation.suite import validate_frame

Status = Literal["accepted", "rejected", "duplicate"]


@dataclass(frozen=True)
class IngestResult:
    source: str
    status: Status
    reason: str
    destination: str | None
    md5: str

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


def _already_ingested(batches: Path, md5: str) -> Path | None:
    if not batches.exists():
        return None
    return next((p for p in sorted(batches.iterdir()) if md5[:12] in p.name), None)


def _quarantine(file: Path, md5: str, params: Params, reason: str, report: dict) -> Path:
    folder = params.paths.quarantine / f"{file.stem}-{md5[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    (folder / "reason.txt").write_text(reason + "\n")
    dest = folder / file.name
    shutil.move(str(file), dest)
    return dest


def check_batch(file: Path, params: Params) -> tuple[str | None, dict]:
    """(None, report) when the batch passes the suite, else (one-line reason, report)."""
    try:
        df = read_file(file)
    except DataError as err:
        return str(err), {"source": str(file), "success": False, "headline": str(err)}
    result = validate_frame(
        df,
        params.dataset.suite,
        str(file),
        partial_unexpected_count=params.validate_.partial_unexpected_count,
    )
    report = result.to_dict()
    return (None if result.success else result.headline()), report


def ingest_file(file: Path, params: Params, *, version: bool = True) -> IngestResult:
    """`_ingest_file` under the project lock (registry.lock): never while a retrain runs, so
    a retrain's record pins exactly the data its pipeline read; a wait is logged."""
    from retrain.registry import lock

    timeout = params.registry.lock_timeout_s
    with lock.exclusive(params.paths.retrain_lock, file.name, timeout, command="ingest"):
        return _ingest_file(file, params, version=version)


def _ingest_file(file: Path, params: Params, *, version: bool = True) -> IngestResult:
    """Validate one landed file and accept, reject or skip it (see the module docstring).

    Args:
        file: the landed CSV/Parquet file.
        params: paths and the suite; paths are relative to the repository root (cwd).
        version: re-pin data.dvc and push after accepting (off for dry runs and unit tests).
    """
    md5 = file_md5(file)
    seen = _already_ingested(params.paths.batches, md5)
    if seen is not None:
        file.unlink()
        return IngestResult(str(file), "duplicate", f"already ingested as {seen}", str(seen), md5)
    reason, report = check_batch(file, params)
    if reason is not None:
        dest = _quarantine(file, md5, params, reason, report)
        return IngestResult(str(file), "rejected", reason, str(dest), md5)
    params.paths.batches.mkdir(parents=True, exist_ok=True)
    dest = params.paths.batches / f"{file.stem}-{md5[:12]}{file.suffix}"
    shutil.move(str(file), dest)
    if version:
        pin_raw_data(params)
    return IngestResult(str(file), "accepted", report["headline"], str(dest), md5)


def pin_raw_data(params: Params) -> None:
    """Record the raw folder's new content in data.dvc and send it to the DVC remote."""
    from retrain.orchestration.dvc import run_dvc

    pin = params.paths.data_pin.resolve()
    run_dvc(pin.parent, "commit", "-f", "-q", pin.name)
    run_dvc(pin.parent, "push", "-q", pin.name)
