"""Obtain the raw data pinned by data.dvc: from the DVC remote, or rebuilt offline and checked."""

from __future__ import annotations

from pathlib import Path

from retrain.errors import DataError
from retrain.infra import dvc
from retrain.infra.dvc import DvcError, read_pin, workspace_hash


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
        pulled = dvc.succeeds(repo_root, "pull", "-q", str(dvc_file.relative_to(repo_root)))
        current = workspace_hash(repo_root, target)
        how = "pulled from the DVC remote"
        if (not pulled or current != pin.md5) and callable(rebuild):
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
    try:
        dvc.commit_and_push(repo_root, [dvc_file])
        remote = "pushed to the DVC remote"
    except DvcError:
        remote = "push failed"
    return f"{pin.path}: {how}, matches {pin.dvc_file.name} ({pin.md5}); {remote}"
