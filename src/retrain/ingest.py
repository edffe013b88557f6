"""Ingest landed batches: validate each one, then version it with DVC or keep it aside.

Landing protocol (README "New data"): a producer writes `NAME` into `paths.landing`, and only
when it is complete creates an empty marker `NAME.done` beside it. A file without its marker
is never read (it may still be written); a marker without its file is reported. Readable
types: `.csv`, `.csv.gz`, `.parquet`/`.pq`, in any letter case.

Each entry of the landing folder is handled on its own; one bad entry never stops the others:

- accepted: a real copy (never a link, never the producer's inode) is validated and placed
  atomically in `paths.batches` as `<name>-<md5>.csv|.parquet` (gzip CSV stored
  decompressed); `dvc commit` re-pins data.dvc and `dvc push` sends it to the remote.
- rejected: the bytes as landed go to `paths.quarantine/<name>-<md5>/` beside `report.json`
  and a one-line `reason.txt`; the quarantine folder is itself tracked by DVC (`<quarantine>.dvc`,
  committed to git) and pushed, so a rejected batch survives the machine.
- duplicate: the same content (full md5 of the table bytes, never a name) is already stored.
- refused: a symbolic link; its target is never read, only recorded in quarantine.
- skipped / pending: a directory, an unsupported type, an orphan marker / no marker yet.

Until a push succeeds, `<landing>/.ingest/unpushed` remembers that placed batches are not on
the remote yet; every later ingest pushes them first. A run killed at any point leaves the
landing file and its marker (or the placed batch) where the next run finds them.
"""

from __future__ import annotations

import csv
import errno
import gzip
import io
import json
import os
import shutil
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from retrain.config import Params
from retrain.data.io import read_file
from retrain.errors import DataError, RetrainError
from retrain.hashing import file_md5
from retrain.infra.proc import pid_exists
from retrain.validation.raw import validate_raw

Status = Literal["accepted", "rejected", "duplicate", "refused", "skipped", "pending"]
MARKER = ".done"  # `NAME.done` says NAME is complete
STAGING = ".ingest"  # hidden folder in the landing folder: claims, staged copies, the journal
JOURNAL = "unpushed"  # in STAGING: batches placed in the workspace but not yet pushed
_KINDS = {".csv.gz": ".csv", ".csv": ".csv", ".parquet": ".parquet", ".pq": ".parquet"}
_TMP = ".ingest-tmp"  # suffix of a half-copied file (removed by the next run)
_DVC_LOCK_TRIES = 10


@dataclass(frozen=True)
class IngestResult:
    source: str
    status: Status
    reason: str
    destination: str | None
    md5: str
    rows: int | None = None  # data rows in the landed table (None: never read)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IngestRun:
    """What one pass over the landing folder did to each entry, and whether DVC has it."""

    results: list[IngestResult] = field(default_factory=list)
    versioned: bool | None = None  # None: nothing to version; False: see version_error
    version_error: str | None = None
    retried: bool = False  # placed batches of an earlier, interrupted or failed run

    @property
    def ok(self) -> bool:
        """Every entry accepted, a duplicate or pending, and everything placed is pushed."""
        fine = {"accepted", "duplicate", "pending"}
        return all(r.status in fine for r in self.results) and self.versioned is not False

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.status] = counts.get(r.status, 0) + 1
        told = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no landed file"
        if self.versioned is None:
            dvc = "nothing to push"
        elif self.versioned:
            dvc = "pushed to the DVC remote" + (" (with an earlier run's)" if self.retried else "")
        else:
            dvc = (
                "NOT pushed (kept in the workspace, retried by the next ingest): "
                f"{self.version_error}"
            )
        return f"ingest: {told}; {dvc}"


def _kind(name: str) -> tuple[str, str] | None:
    """(stem, stored suffix) of a readable landed name, None for an unsupported type."""
    lower = name.lower()
    for ext, stored in _KINDS.items():
        if lower.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)], stored
    return None


def marker_of(file: Path) -> Path:
    return file.with_name(file.name + MARKER)


def mark_landed(file: Path) -> Path:
    """Follow the landing protocol for a file just written in full: create its marker."""
    marker = marker_of(file)
    marker.touch()
    return marker


def _staging(params: Params) -> Path:
    return params.paths.landing / STAGING


def _journal(params: Params) -> Path:
    return _staging(params) / JOURNAL


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# --- reading the landed bytes ----------------------------------------------------------------


def _copy_nofollow(src: Path, dest: Path) -> None:
    """A real copy of `src`'s bytes; a symbolic link (even one made a moment ago) fails."""
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh, dest.open("wb") as out:
        shutil.copyfileobj(fh, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())


def _decompress(src: Path, dest: Path, name: str) -> str | None:
    """Gunzip `src` into `dest`; a one-line reason when it is not a complete gzip file."""
    try:
        with gzip.open(src, "rb") as fh, dest.open("wb") as out:
            shutil.copyfileobj(fh, out, 1 << 20)
    except (OSError, EOFError, zlib.error) as err:
        return f"{name}: not a complete gzip file ({_one_line(str(err), 80)})"
    return None


def _utf8_problem(data: bytes, name: str) -> str | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        start = data.rfind(b"\n", 0, err.start) + 1
        line_no = data.count(b"\n", 0, err.start) + 1
        header = next(csv.reader([data.split(b"\n", 1)[0].decode("latin-1")]), [])
        before = data[start : err.start].decode("latin-1")
        index = len(next(csv.reader([before + "x"]))) - 1
        column = f"column {header[index]!r}" if index < len(header) else "a column"
        return (
            f"{name}: {column} on line {line_no} is not UTF-8 (byte 0x{data[err.start]:02x}; "
            "latin-1/cp1252?): save the file as UTF-8"
        )
    return None


def _csv_problem(path: Path, name: str) -> str | None:
    """A one-line reason when a CSV is not complete, comma-separated UTF-8 text, else None."""
    data = path.read_bytes()
    if not data.strip():
        return None  # read_file says "file is empty"
    bad = _utf8_problem(data, name)
    if bad:
        return bad
    text = data.decode("utf-8")
    first = text.split("\n", 1)[0].rstrip("\r")
    header = next(csv.reader([first]))
    if len(header) == 1:
        for sep in (";", "\t", "|"):
            if sep in first:
                return (
                    f"{name}: columns are separated by {sep!r}, not ',' (the header is one "
                    f"column holding {first.count(sep)} {sep!r}): save it comma-separated"
                )
    if not text.endswith("\n"):
        line_no = text.count("\n") + 1
        return (
            f"{name}: line {line_no} (the last) has no line break: the file is truncated or "
            "still being written"
        )
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader)
    for row in reader:
        if row and len(row) != len(header):
            return (
                f"{name}: line {reader.line_num} has {len(row)} fields, the header "
                f"{len(header)}: a truncated or malformed line"
            )
    return None


def _count_rows(path: Path, stored: str) -> int | None:
    """Data rows in a staged table, from its bytes (CSV lines, Parquet metadata)."""
    try:
        if stored == ".parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        with path.open("rb") as fh:
            data = fh.read()
    except Exception:  # an unreadable file: its reason says why; rows are unknown
        return None
    if not data.strip():
        return 0
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    return max(lines - 1, 0)


def check_batch(
    file: Path, params: Params, *, source: str | None = None
) -> tuple[str | None, dict]:
    """(None, report) when the batch passes the suite and the PII guard, else (one-line
    reason, report). `source` names the file in messages (default: `file`)."""
    name = source or str(file)
    try:
        df = read_file(file)
    except DataError as err:
        reason = _one_line(str(err).replace(str(file), name))
        return reason, {"source": name, "success": False, "headline": reason}
    result = validate_raw(df, params, name)
    report = result.to_dict()
    return (None if result.success else _one_line(result.headline())), report


# --- placing files ---------------------------------------------------------------------------


def _place(src: Path, dest: Path) -> None:
    """Move `src` to `dest` atomically: `dest` is either absent or complete, never half."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dest)
        return
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
    tmp = dest.with_name(f".{dest.name}{_TMP}")  # across file systems: copy, then rename
    if src.is_dir():
        shutil.copytree(src, tmp)
    else:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    shutil.rmtree(src) if src.is_dir() else src.unlink()


def _stored_copy(batches: Path, staged: Path, md5: str) -> Path | None:
    """The stored batch with exactly these bytes (same size, same full md5), if any."""
    if not batches.is_dir():
        return None
    size = staged.stat().st_size
    for p in sorted(batches.iterdir()):
        if p.is_file() and not p.is_symlink() and not p.name.startswith("."):
            if p.stat().st_size == size and file_md5(p) == md5:
                return p
    return None


def _quarantine_dir(
    params: Params, work: Path, folder: str, reason: str, report: dict, keep: Path | None
) -> Path:
    """Place `<quarantine>/<folder>/` with the real bytes `keep`, report.json, reason.txt."""
    build = work / "quarantine" / folder
    build.mkdir(parents=True)
    (build / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    (build / "reason.txt").write_text(reason + "\n")
    if keep is not None:
        os.replace(keep, build / keep.name)
    dest = params.paths.quarantine / folder
    if not dest.exists():
        _place(build, dest)
        return dest
    for item in build.iterdir():  # the same table rejected again: keep every landed file
        _place(item, dest / item.name)
    return dest


def _remove_landed(file: Path) -> None:
    file.unlink(missing_ok=True)
    marker_of(file).unlink(missing_ok=True)


def _note_unpushed(params: Params) -> None:
    _journal(params).parent.mkdir(parents=True, exist_ok=True)
    _journal(params).touch()


# --- one entry -------------------------------------------------------------------------------


def _refuse_link(file: Path, params: Params, work: Path) -> IngestResult:
    target = os.readlink(file)
    reason = (
        f"{file.name}: a symbolic link (to {target!r}) is refused, its target is never read; "
        "land the file itself"
    )
    report = {"source": str(file), "success": False, "headline": reason, "link": target}
    _note_unpushed(params)
    dest = _quarantine_dir(params, work, f"{file.name}-link", reason, report, None)
    _remove_landed(file)  # the link only: its target is not ours
    return IngestResult(str(file), "refused", reason, str(dest), "")


def ingest_file(file: Path, params: Params, *, version: bool = True) -> IngestResult:
    """`_ingest_file` under the project lock (registry.lock): never while a retrain runs, so
    a retrain's record pins exactly the data its pipeline read; a wait is logged."""
    from retrain.registry import lock

    timeout = params.registry.lock_timeout_s
    with lock.exclusive(params.paths.retrain_lock, file.name, timeout, command="ingest"):
        return _ingest_file(file, params, version=version)


def _ingest_file(file: Path, params: Params, *, version: bool = True) -> IngestResult:
    """Validate one landed file and accept, reject or skip it (see the module docstring).

    The caller says the file is complete (`ingest_landing` checks the landing protocol).

    Args:
        file: the landed CSV/CSV.gz/Parquet file.
        params: paths and the suite; paths are relative to the repository root (cwd).
        version: re-pin data.dvc (and the quarantine) and push after placing the file (off
            for dry runs and unit tests; the next versioned run pushes it).
    """
    work = _staging(params) / str(os.getpid())
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = _ingest(file, params, work)
    finally:
        for child in work.iterdir():
            if child.name != marker_of(file).name:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    if version and result.status in ("accepted", "rejected", "refused"):
        pin_raw_data(params)
    return result


def _ingest(file: Path, params: Params, work: Path) -> IngestResult:
    name = file.name
    if file.is_symlink():
        return _refuse_link(file, params, work)
    if file.is_dir():
        return IngestResult(str(file), "skipped", f"{name}: a directory, not a file", None, "")
    kind = _kind(name)
    if kind is None:
        reason = f"{name}: unsupported file type; land .csv, .csv.gz or .parquet"
        return IngestResult(str(file), "skipped", reason, None, "")
    stem, stored = kind
    original = work / name
    try:
        _copy_nofollow(file, original)
    except OSError as err:
        if err.errno == errno.ELOOP:  # replaced by a link since we looked
            return _refuse_link(file, params, work)
        return IngestResult(str(file), "skipped", f"{name}: unreadable ({err.strerror})", None, "")
    table = work / "table" / f"{stem}{stored}"
    table.parent.mkdir()
    problem = None
    if name.lower().endswith(".gz"):
        problem = _decompress(original, table, name)
    else:
        os.link(original, table)  # both are our private copies
    md5 = file_md5(table if problem is None else original)
    rows = None if problem else _count_rows(table, stored)
    if problem is None:
        seen = _stored_copy(params.paths.batches, table, md5)
        if seen is not None:
            _remove_landed(file)
            reason = f"{name}: already ingested as {seen} (same content)"
            return IngestResult(str(file), "duplicate", reason, str(seen), md5, rows)
        if stored == ".csv":
            problem = _csv_problem(table, name)
    report: dict[str, Any] = {"source": name, "success": False, "headline": problem}
    if problem is None:
        problem, report = check_batch(table, params, source=name)
    _note_unpushed(params)
    if problem is not None:
        dest = _quarantine_dir(params, work, f"{stem}-{md5[:12]}", problem, report, original)
        _remove_landed(file)
        return IngestResult(str(file), "rejected", problem, str(dest / name), md5, rows)
    dest = params.paths.batches / f"{stem}-{md5[:12]}{stored}"
    if dest.exists():  # other bytes under the same short name: never overwrite them
        dest = dest.with_name(f"{stem}-{md5}{stored}")
    _place(table, dest)
    _remove_landed(file)
    return IngestResult(str(file), "accepted", report["headline"], str(dest), md5, rows)


# --- the landing folder ----------------------------------------------------------------------


def _alive(pid: int) -> bool:
    return pid_exists(pid)


def _recover(params: Params) -> None:
    """Undo what a killed ingest left: its claimed markers go back, half copies go away."""
    staging = _staging(params)
    if staging.is_dir():
        for claim in staging.iterdir():
            if not claim.is_dir() or not claim.name.isdigit() or _alive(int(claim.name)):
                continue
            for marker in claim.glob(f"*{MARKER}"):
                landed = params.paths.landing / marker.name.removesuffix(MARKER)
                if landed.exists() or landed.is_symlink():
                    os.replace(marker, params.paths.landing / marker.name)
            shutil.rmtree(claim, ignore_errors=True)
    for folder in (params.paths.batches, params.paths.quarantine):
        if folder.is_dir():
            for tmp in folder.glob(f".*{_TMP}"):
                shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()


def _entries(landing: Path) -> Iterator[tuple[Path, bool]]:
    """(entry, complete) for every landed entry but markers, the staging folder and files
    whose marker another running ingest has claimed."""
    names = {p.name for p in landing.iterdir()}
    claimed = {m.name for m in (landing / STAGING).glob(f"*/*{MARKER}")}
    for name in sorted(names):
        if name == STAGING or f"{name}{MARKER}" in claimed:
            continue
        path = landing / name
        if name.endswith(MARKER):
            base = name.removesuffix(MARKER)
            if base not in names:
                yield path, True  # an orphan marker
            continue
        yield path, f"{name}{MARKER}" in names


def landed_files(params: Params) -> list[Path]:
    """The complete landed entries (with their marker) an ingest would take now."""
    landing = params.paths.landing
    if not landing.is_dir():
        return []
    return [path for path, complete in _entries(landing) if complete and path.exists()]


def _claim(file: Path, params: Params) -> bool:
    """Take the file's marker into this process's staging folder; False when another ingest
    took it first (the rename is atomic, so exactly one wins)."""
    work = _staging(params) / str(os.getpid())
    work.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(marker_of(file), work / marker_of(file).name)
    except FileNotFoundError:
        return False
    return True


def ingest_landing(params: Params, *, version: bool = True) -> IngestRun:
    """Handle every entry of `paths.landing` on its own, then version what was placed.

    Args:
        params: paths and the suite; paths are relative to the repository root (cwd).
        version: commit and push data.dvc and the quarantine (and any earlier unpushed
            batches) at the end.

    Returns:
        One result per entry (files without their marker are `pending`) and whether DVC
        has everything placed.
    """
    from retrain.registry import lock

    # One project lock for the whole run, placing and pinning alike: a retrain's record then
    # pins exactly the data its pipeline read (a wait is logged, naming the holder).
    timeout = params.registry.lock_timeout_s
    with lock.exclusive(
        params.paths.retrain_lock, f"ingest-{os.getpid()}", timeout, command="ingest"
    ):
        return _ingest_landing(params, version=version)


def _ingest_landing(params: Params, *, version: bool) -> IngestRun:
    run = IngestRun()
    landing = params.paths.landing
    landing.mkdir(parents=True, exist_ok=True)
    _recover(params)
    retry = _journal(params).exists()
    for path, complete in _entries(landing):
        if path.name.endswith(MARKER):
            base = path.name.removesuffix(MARKER)
            reason = f"{path.name}: a marker without its file {base}; land {base} first"
            run.results.append(IngestResult(str(path), "skipped", reason, None, ""))
        elif not complete and not path.is_symlink() and not path.is_dir():
            reason = f"{path.name}: waiting for its marker {path.name}{MARKER} (landing protocol)"
            run.results.append(IngestResult(str(path), "pending", reason, None, ""))
        elif complete and not _claim(path, params):
            continue  # another ingest has it
        else:
            try:
                run.results.append(_ingest_file(path, params, version=False))
            except Exception as err:  # one entry's failure must never stop the others
                cause = _one_line(str(err) or type(err).__name__)
                reason = f"{path.name}: not handled, left for the next run ({cause})"
                run.results.append(IngestResult(str(path), "skipped", reason, None, ""))
            finally:
                claimed = _staging(params) / str(os.getpid()) / marker_of(path).name
                if claimed.exists():  # not handled: the marker goes back for the next run
                    os.replace(claimed, marker_of(path)) if path.exists() else claimed.unlink()
    if version and _journal(params).exists():
        run.retried = retry
        try:
            pin_raw_data(params)
            run.versioned = True
        except RetrainError as err:
            run.versioned, run.version_error = False, _one_line(str(err))
    return run


# --- versioning ------------------------------------------------------------------------------


def quarantine_pin(params: Params) -> Path:
    """The DVC pin of the quarantine folder (DVC's convention: `<folder>.dvc` beside it)."""
    q = params.paths.quarantine
    return q.with_name(q.name + ".dvc")


def pin_raw_data(params: Params) -> None:
    """Record the raw folder (data.dvc) and the quarantine (its own .dvc, committed to git)
    and send both to the DVC remote; forget the unpushed journal only when all succeeded.

    Raises:
        DvcError: a DVC command failed (e.g. the remote is unreachable); the journal stays.
    """
    from retrain.infra import dvc

    _note_unpushed(params)
    noted = _journal(params).stat().st_mtime_ns
    pin = params.paths.data_pin.resolve()
    root = pin.parent

    pins = [pin]
    quarantine = params.paths.quarantine.resolve()
    try:
        if quarantine.is_dir() and any(quarantine.iterdir()):
            if not quarantine.is_relative_to(root):
                raise RetrainError(
                    f"{quarantine}: outside the repository {root}, cannot version it"
                )
            qpin = quarantine_pin(params).resolve()
            if not qpin.exists():  # the first rejected batch
                dvc.run(
                    root,
                    "add",
                    "-q",
                    str(quarantine.relative_to(root)),
                    lock_tries=_DVC_LOCK_TRIES,
                )
            pins.append(qpin)
        # Another DVC command (e.g. a second ingest) may hold the lock: wait for it.
        dvc.commit_and_push(root, pins, lock_tries=_DVC_LOCK_TRIES)
    except dvc.DvcError as err:
        _note_unpushed(params)  # whoever pushes next pushes ours too
        text = str(err)
        cause = text[text.find("ERROR") :].split(" | ")[0] if "ERROR" in text else text
        raise dvc.DvcError(f"dvc {text.split()[1]} failed: {cause}") from None
    if len(pins) > 1:
        _git_commit(root, [pins[1], pins[1].parent / ".gitignore"])
    journal = _journal(params)
    if journal.exists() and journal.stat().st_mtime_ns == noted:
        journal.unlink(missing_ok=True)  # else another ingest placed a batch since we began


def _git_commit(root: Path, files: list[Path]) -> None:
    """Commit the quarantine pin (and the .gitignore DVC may have written) alone, so a fresh
    clone can `dvc pull` rejected batches and a retrain does not find the pin changed."""
    from retrain.infra.git import GitError, git

    try:
        git(root, "rev-parse", "--git-dir")
    except GitError:
        return  # not a git checkout: the pin stays in the workspace
    rels = [str(f.relative_to(root)) for f in files if f.exists()]
    git(root, "add", "--", *rels)
    if git(root, "diff", "--cached", "--name-only", "--", *rels).strip():
        git(
            root,
            "-c",
            "user.name=retrain",
            "-c",
            "user.email=retrain@localhost",
            "commit",
            "-q",
            "-m",
            f"ingest: quarantine pinned ({rels[0]})",
            "--",
            *rels,
        )
