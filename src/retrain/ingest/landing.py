"""The landing protocol: which landed entries are complete, claimed, or left by a killed run.

A producer writes `NAME` into `paths.landing`, and only when it is complete creates an empty
marker `NAME.done` beside it. An ingest claims a file by moving its marker into its own staging
folder (`<landing>/.ingest/<pid>/`): the rename is atomic, so two ingests never take the same
file, and a killed ingest's claims are given back by the next run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from retrain.config import Params
from retrain.data.arrivals import ARRIVALS
from retrain.infra.proc import pid_exists

MARKER = ".done"  # `NAME.done` says NAME is complete
STAGING = ".ingest"  # hidden folder in the landing folder: claims, staged copies, the journal
JOURNAL = "unpushed"  # in STAGING: batches placed in the workspace but not yet pushed
TMP = ".ingest-tmp"  # suffix of a half-copied file (removed by the next run)


def marker_of(file: Path) -> Path:
    return file.with_name(file.name + MARKER)


def mark_landed(file: Path) -> Path:
    """Follow the landing protocol for a file just written in full: create its marker."""
    marker = marker_of(file)
    marker.touch()
    return marker


def staging(params: Params) -> Path:
    return params.paths.landing / STAGING


def work_dir(params: Params) -> Path:
    """This process's staging folder: its claimed markers and private copies."""
    return staging(params) / str(os.getpid())


def journal(params: Params) -> Path:
    return staging(params) / JOURNAL


def note_unpushed(params: Params) -> None:
    journal(params).parent.mkdir(parents=True, exist_ok=True)
    journal(params).touch()


def remove_landed(file: Path) -> None:
    file.unlink(missing_ok=True)
    marker_of(file).unlink(missing_ok=True)


def recover(params: Params) -> None:
    """Undo what a killed ingest left: its claimed markers go back, half copies go away."""
    folder = staging(params)
    if folder.is_dir():
        for claim in folder.iterdir():
            if not claim.is_dir() or not claim.name.isdigit() or pid_exists(int(claim.name)):
                continue
            for marker in claim.glob(f"*{MARKER}"):
                landed = params.paths.landing / marker.name.removesuffix(MARKER)
                if landed.exists() or landed.is_symlink():
                    os.replace(marker, params.paths.landing / marker.name)
            shutil.rmtree(claim, ignore_errors=True)
    for placed in (params.paths.batches, params.paths.quarantine):
        if placed.is_dir():
            for tmp in placed.glob(f".*{TMP}"):
                shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    for tmp in params.paths.batches.glob(f".{ARRIVALS}.*.tmp"):  # a half-written record
        tmp.unlink()


def entries(landing: Path) -> Iterator[tuple[Path, bool]]:
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
    return [path for path, complete in entries(landing) if complete and path.exists()]


def claim(file: Path, params: Params) -> bool:
    """Take the file's marker into this process's staging folder; False when another ingest
    took it first (the rename is atomic, so exactly one wins)."""
    work = work_dir(params)
    work.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(marker_of(file), work / marker_of(file).name)
    except FileNotFoundError:
        return False
    return True


def give_back(file: Path, params: Params) -> None:
    """A claimed file not handled: its marker goes back for the next run."""
    claimed = work_dir(params) / marker_of(file).name
    if claimed.exists():
        os.replace(claimed, marker_of(file)) if file.exists() else claimed.unlink()
