"""Placing files atomically: accepted batches into `paths.batches`, rejected ones aside.

A rejected batch's bytes as landed go to `paths.quarantine/<name>-<md5>/` beside `report.json`
and a one-line `reason.txt`; an entry that is never read (a link, a FIFO, a device, a socket)
gets the folder with the report only.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

from retrain.config import Params
from retrain.hashing import file_md5
from retrain.ingest.landing import TMP, note_unpushed, remove_landed
from retrain.ingest.results import IngestResult


def place(src: Path, dest: Path) -> None:
    """Move `src` to `dest` atomically: `dest` is either absent or complete, never half."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dest)
        return
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
    tmp = dest.with_name(f".{dest.name}{TMP}")  # across file systems: copy, then rename
    if src.is_dir():
        shutil.copytree(src, tmp)
    else:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    shutil.rmtree(src) if src.is_dir() else src.unlink()


def stored_copy(batches: Path, staged: Path, md5: str) -> Path | None:
    """The stored batch with exactly these bytes (same size, same full md5), if any."""
    if not batches.is_dir():
        return None
    size = staged.stat().st_size
    for p in sorted(batches.iterdir()):
        if p.is_file() and not p.is_symlink() and not p.name.startswith("."):
            if p.stat().st_size == size and file_md5(p) == md5:
                return p
    return None


def quarantine_dir(
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
        place(build, dest)
        return dest
    for item in build.iterdir():  # the same table rejected again: keep every landed file
        place(item, dest / item.name)
    return dest


def refuse_entry(file: Path, what: str, params: Params, work: Path) -> IngestResult:
    """Refuse a landed entry that is not a regular file, without opening it: its report is
    kept in quarantine and the entry (the name only: a link's target is not ours) removed."""
    report: dict[str, object] = {"source": str(file), "success": False, "entry": what}
    if what == "a symbolic link":
        target = os.readlink(file)
        reason = (
            f"{file.name}: a symbolic link (to {target!r}) is refused, its target is never "
            "read; land the file itself"
        )
        report["link"] = target
        folder = f"{file.name}-link"
    else:
        reason = f"{file.name}: {what} is refused without being opened; land a regular file"
        folder = f"{file.name}-{what.split()[1]}"
    report["headline"] = reason
    note_unpushed(params)
    dest = quarantine_dir(params, work, folder, reason, report, None)
    remove_landed(file)
    return IngestResult(str(file), "refused", reason, str(dest), "")
