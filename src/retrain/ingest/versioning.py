"""Versioning what ingest placed: data.dvc and the quarantine's own pin, committed and pushed.

Until a push succeeds, `<landing>/.ingest/unpushed` remembers that placed batches are not on
the remote yet; every later ingest pushes them first.
"""

from __future__ import annotations

import os
from pathlib import Path

from retrain.config import Params
from retrain.errors import RetrainError
from retrain.infra.dvc import read_pin
from retrain.ingest.landing import journal, note_unpushed

_DVC_LOCK_TRIES = 10


def quarantine_pin(params: Params) -> Path:
    """The DVC pin of the quarantine folder (DVC's convention: `<folder>.dvc` beside it)."""
    q = params.paths.quarantine
    return q.with_name(q.name + ".dvc")


def _quarantine_pins(params: Params, root: Path) -> list[Path]:
    """[the quarantine's pin] once something is quarantined (added to DVC the first time)."""
    from retrain.infra import dvc

    quarantine = params.paths.quarantine.resolve()
    if not quarantine.is_dir() or not any(quarantine.iterdir()):
        return []
    if not quarantine.is_relative_to(root):
        raise RetrainError(f"{quarantine}: outside the repository {root}, cannot version it")
    qpin = quarantine_pin(params).resolve()
    if not qpin.exists():  # the first rejected batch
        dvc.run(root, "add", "-q", str(quarantine.relative_to(root)), lock_tries=_DVC_LOCK_TRIES)
    return [qpin]


def _holdout_pins(params: Params, root: Path) -> list[Path]:
    """[paths.holdout_pin] once the holdout holds a file (the pin written the first time:
    `dvc add` would name it `<folder>.dvc` beside the folder, not paths.holdout_pin)."""
    from retrain.ingest.holdout import holdout_files

    pin = params.paths.holdout_pin.resolve()
    if not holdout_files(params) and not pin.exists():
        return []
    holdout = params.paths.holdout.resolve()
    if not holdout.is_relative_to(root):
        raise RetrainError(f"{holdout}: outside the repository {root}, cannot version it")
    if not pin.exists():
        out = Path(os.path.relpath(holdout, pin.parent)).as_posix()
        pin.write_text(f"outs:\n- path: {out}\n")
    return [pin]


def pin_raw_data(params: Params) -> None:
    """Record the raw folder (data.dvc), the holdout (paths.holdout_pin) and the quarantine
    (each in its own .dvc, committed to git) in one `dvc commit`, and send them to the DVC
    remote; forget the unpushed journal only when all succeeded.

    Raises:
        DvcError: a DVC command failed (e.g. the remote is unreachable); the journal stays.
    """
    from retrain.infra import dvc

    note_unpushed(params)
    noted = journal(params).stat().st_mtime_ns
    pin = params.paths.data_pin.resolve()
    root = pin.parent
    try:
        held = _holdout_pins(params, root)
        quarantined = _quarantine_pins(params, root)
        pins = [pin, *held, *quarantined]
        # Another DVC command (e.g. a second ingest) may hold the lock: wait for it.
        dvc.commit_and_push(root, pins, lock_tries=_DVC_LOCK_TRIES)
    except dvc.DvcError as err:
        note_unpushed(params)  # whoever pushes next pushes ours too
        text = str(err)
        cause = text[text.find("ERROR") :].split(" | ")[0] if "ERROR" in text else text
        raise dvc.DvcError(f"dvc {text.split()[1]} failed: {cause}") from None
    for own, what in ((held, "holdout"), (quarantined, "quarantine")):
        for p in own:
            out = read_pin(p).path
            _git_commit(root, [p, out.parent / ".gitignore"], what)
    done = journal(params)
    if done.exists() and done.stat().st_mtime_ns == noted:
        done.unlink(missing_ok=True)  # else another ingest placed a batch since we began


def _git_commit(root: Path, files: list[Path], what: str) -> None:
    """Commit a pin (and the .gitignore DVC may have written beside what it pins) alone, so
    a fresh clone can `dvc pull` the holdout and rejected batches and a retrain does not find
    the pin or the .gitignore changed."""
    from retrain.infra.git import GitError, git

    try:
        git(root, "rev-parse", "--git-dir")
    except GitError:
        return  # not a git checkout: the pin stays in the workspace
    rels = [str(f.relative_to(root)) for f in files if f.exists()]
    git(root, "add", "--", *rels)
    if git(root, "diff", "--cached", "--name-only", "--", *rels).strip():
        identity = ["-c", "user.name=retrain", "-c", "user.email=retrain@localhost"]
        message = f"ingest: {what} pinned ({rels[0]})"
        git(root, *identity, "commit", "-q", "-m", message, "--", *rels)
