"""Obtain the raw data pinned by data.dvc: from the DVC remote, or rebuilt offline and checked."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from retrain.errors import DataError


@dataclass(frozen=True)
class Pin:
    """The hash and path that a .dvc file pins."""

    dvc_file: Path
    path: Path
    md5: str


def read_pin(dvc_file: Path) -> Pin:
    try:
        out = yaml.safe_load(dvc_file.read_text())["outs"][0]
    except (FileNotFoundError, KeyError, IndexError, TypeError):
        raise DataError(f"{dvc_file}: missing or not a DVC file with one output") from None
    return Pin(dvc_file, dvc_file.parent / out["path"], str(out["md5"]))


def workspace_hash(repo_root: Path, path: Path) -> str | None:
    """DVC's own hash of `path` as it is on disk (what `dvc add` would pin), or None."""
    if not path.exists():
        return None
    from dvc.repo import Repo
    from dvc_data.hashfile.build import build

    with Repo(str(repo_root)) as repo:
        _, _, obj = build(
            repo.cache.local, str(path), repo.fs, "md5", dry_run=True, ignore=repo.dvcignore
        )
    return str(obj.hash_info.value)


def _dvc(repo_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=False,
    )


def ensure_pinned_data(repo_root: Path, dvc_file: Path, rebuild: object = None) -> str:
    """Make the workspace hold exactly the data `dvc_file` pins.

    Order: data already on disk and matching; else `dvc pull` from the default remote; else
    `rebuild()` (writes the data offline) followed by a hash check. Matching data is committed
    to the DVC cache and pushed so that `dvc pull` works next time.

    Returns:
        A one-line account of where the data came from.

    Raises:
        DataError: the data on disk, pulled or rebuilt does not match the pin.
    """
    pin = read_pin(dvc_file)
    target = repo_root / pin.path
    how = "already present"
    current = workspace_hash(repo_root, target)
    if current is None:
        pulled = _dvc(repo_root, "pull", "-q", str(dvc_file.relative_to(repo_root)))
        current = workspace_hash(repo_root, target)
        how = "pulled from the DVC remote"
        if (pulled.returncode != 0 or current != pin.md5) and callable(rebuild):
            rebuild()
            current = workspace_hash(repo_root, target)
            how = "rebuilt offline"
    if current is None:
        raise DataError(f"{pin.path}: not found; `dvc pull` failed and no offline source exists")
    if current != pin.md5:
        raise DataError(
            f"{pin.path}: hash {current} does not match {pin.md5} pinned in {pin.dvc_file.name}; "
            "restore it with `dvc checkout`, or pin new data with `dvc add` and commit"
        )
    rel = str(dvc_file.relative_to(repo_root))
    _dvc(repo_root, "commit", "-f", "-q", rel)
    pushed = _dvc(repo_root, "push", "-q", rel)
    remote = "pushed to the DVC remote" if pushed.returncode == 0 else "push failed"
    return f"{pin.path}: {how}, matches {pin.dvc_file.name} ({pin.md5}); {remote}"
