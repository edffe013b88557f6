"""One pass over the landing folder: every entry handled on its own, then versioned.

One bad entry never stops the others. The config is checked against the pinned data once,
before the first entry is touched: a fault of params.yaml stops the pass with one line naming
params.yaml and the key, and every landed file stays where it is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from retrain.config import Params
from retrain.errors import RetrainError
from retrain.ingest.entry import handle_entry
from retrain.ingest.landing import (
    MARKER,
    claim,
    entries,
    give_back,
    journal,
    recover,
)
from retrain.ingest.pinned import load_reference
from retrain.ingest.results import IngestResult, IngestRun, one_line
from retrain.validation.contract import Reference


def ingest_landing(
    params: Params, *, version: bool = True, say: Callable[[str], None] | None = None
) -> IngestRun:
    """Handle every entry of `paths.landing` on its own, then version what was placed.

    Args:
        params: paths and the suite; paths are relative to the repository root (cwd).
        version: commit and push data.dvc and the quarantine (and any earlier unpushed
            batches) at the end.
        say: what taking the project lock has to say (a wait, a killed retrain's DVC
            stopped); default: standard error.

    Returns:
        One result per entry (files without their marker are `pending`) and whether DVC
        has everything placed.

    Raises:
        ConfigMismatch: params.yaml disagrees with the pinned data; nothing landed is touched.
    """
    from retrain.registry import lock

    # One project lock for the whole run, placing and pinning alike: a retrain's record then
    # pins exactly the data its pipeline read (a wait is logged, naming the holder).
    timeout = params.registry.lock_timeout_s
    with lock.exclusive(
        params.paths.retrain_lock, f"ingest-{os.getpid()}", timeout, command="ingest", on_wait=say
    ):
        return _ingest_landing(params, version=version)


def _waiting(path: Path, complete: bool) -> IngestResult | None:
    """The result of an entry that is not to be read now: an orphan marker, or no marker."""
    if path.name.endswith(MARKER):
        base = path.name.removesuffix(MARKER)
        reason = f"{path.name}: a marker without its file {base}; land {base} first"
        return IngestResult(str(path), "skipped", reason, None, "")
    if not complete and not path.is_symlink() and not path.is_dir():
        reason = f"{path.name}: waiting for its marker {path.name}{MARKER} (landing protocol)"
        return IngestResult(str(path), "pending", reason, None, "")
    return None


def _handle_claimed(path: Path, params: Params, ref: Reference) -> IngestResult:
    try:
        return handle_entry(path, params, ref, version=False)
    except Exception as err:  # one entry's failure must never stop the others
        cause = one_line(str(err) or type(err).__name__)
        reason = f"{path.name}: not handled, left for the next run ({cause})"
        return IngestResult(str(path), "skipped", reason, None, "")
    finally:
        give_back(path, params)  # not handled: the marker goes back for the next run


def _ingest_landing(params: Params, *, version: bool) -> IngestRun:
    run = IngestRun()
    landing = params.paths.landing
    landing.mkdir(parents=True, exist_ok=True)
    recover(params)
    retry = journal(params).exists()
    ref: Reference | None = None
    for path, complete in entries(landing):
        waiting = _waiting(path, complete)
        if waiting is not None:
            run.results.append(waiting)
            continue
        if ref is None:  # the first entry to read: the config and the pinned data first
            ref = load_reference(params)
        if complete and not claim(path, params):
            continue  # another ingest has it
        run.results.append(_handle_claimed(path, params, ref))
    if version and journal(params).exists():
        run.retried = retry
        try:
            from retrain.ingest.versioning import pin_raw_data

            pin_raw_data(params)
            run.versioned = True
        except RetrainError as err:
            run.versioned, run.version_error = False, one_line(str(err))
    return run
