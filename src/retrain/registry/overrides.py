"""A run's overrides apply to that run only.

DVC stages read params.yaml, so a run's overrides must be in that file while it runs (dvc.lock
then records the values that ran, as `dvc exp run -S` does). Before writing them, the run
saves the file as it found it beside the lock (`<lock>.overrides.json`); when the run ends,
pass or fail, the file is put back. The record commit (tag `run/<id>`) holds params.yaml as
it ran; the branch gets one more commit on top that puts the committed params.yaml back
(registry.record). A run killed with SIGKILL cannot restore anything: the next command that
takes the lock finds the saved file, restores it, and says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retrain.config import Params, apply_overrides, check_overrides
from retrain.files import write_json, write_text


def stash_file(lock_path: Path) -> Path:
    """Where params.yaml is saved while a run's overrides are applied."""
    return lock_path.with_name(lock_path.name + ".overrides.json")


def recover(params_file: Path, lock_path: Path, say: Callable[[str], None]) -> bool:
    """Put params.yaml back as it was before a run that died with its overrides applied.

    Call it holding the lock (the run that saved the file is then gone). True if it restored.
    """
    stash = stash_file(lock_path)
    if not stash.exists():
        return False
    saved = json.loads(stash.read_text())
    if params_file.read_text() != saved["params"]:
        write_text(params_file, saved["params"])
        say(
            f"restored {params_file.name}: run {saved['run_id']} (pid {saved['pid']}, "
            f"{saved['since']}) died with its overrides {saved['overrides']} applied; "
            "this run uses the params.yaml it found before them"
        )
    stash.unlink()
    return True


@contextmanager
def applied(
    params_file: Path, lock_path: Path, run_id: str, overrides: dict[str, Any] | None
) -> Iterator[str]:
    """Apply `overrides` to params.yaml for the block; yields the file's text before them.

    The file is restored when the block ends, whatever happens in it. Hold the lock.
    """
    before = params_file.read_text()
    if not overrides:
        yield before
        return
    check_overrides(overrides)
    stash = stash_file(lock_path)
    saved = {
        "run_id": run_id,
        "pid": os.getpid(),
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
        "overrides": overrides,
        "params": before,
    }
    stash.parent.mkdir(parents=True, exist_ok=True)
    write_json(stash, saved, sort_keys=False, default=str)
    try:
        apply_overrides(params_file, overrides)
        yield before
    finally:
        if params_file.read_text() != before:
            write_text(params_file, before)
        stash.unlink(missing_ok=True)


def with_retrain_overrides(
    params: Params, overrides: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The run's overrides on top of the retrain flow's own (registry.retrain_overrides, e.g.
    the tuning budget {"tune.n_trials": 16, "tune.workers": 2}): a key the run sets wins.

    Overrides like any other (README, "Reproducible retraining"): in params.yaml while the run
    runs, in its record commit and its record's `overrides`, so `retrain reproduce` replays the
    tuned run, while `dvc repro` on the branch stays untuned. Every run of the flow gets them:
    the weekly schedule, the drift runs the monitor starts, a manual run.
    """
    merged = {**params.registry.retrain_overrides, **(overrides or {})}
    return merged or None
