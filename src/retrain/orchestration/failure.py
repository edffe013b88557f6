"""A failed retrain leaves the workspace as it found it, and says which batch broke it.

`dvc repro` deletes a stage's outputs before it runs the stage and rewrites dvc.lock after
each stage that succeeds, so a stage failing after a new batch was accepted used to leave
`metrics/prepare.json` deleted and dvc.lock half updated (issue 25.1): the next `git status`
showed a change nobody made, and recovery needed a hand edit and `dvc commit`. The retrain
flow runs its stages inside `restored_on_failure`, which puts dvc.lock and every stage output
back (from copies, and the DVC cache) and raises one line naming the batch, when the stage's
error names one or exactly one batch is new since the last run, else the stage. A run that is
stopped (cancelled from the UI or by `retrain stack down`: SIGTERM, Prefect's
TerminationSignal; or Ctrl-C) is put back the same way, and ends Cancelled.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from retrain.data.io import SUFFIXES
from retrain.errors import RetrainError
from retrain.infra import dvc, git
from retrain.infra.proc import stop_recorded
from retrain.project import Project
from retrain.registry.lock import DVC_RECORD


class StageFailed(RetrainError):
    """A pipeline stage failed; the workspace was restored. The message is one line."""


@dataclass
class Progress:
    """The stage running now (set by the caller before each stage)."""

    stage: str | None = None


def blame(project: Project, error: str, new: list[Path]) -> str | None:
    """The batch file that `error` names (a file of paths.raw_data; of those, the one new
    since the last run: "columns differ" names the pinned table beside the new batch), else
    the one batch new since the last run, else None."""
    raw = project.params.paths.raw_data
    files = sorted(p for p in raw.rglob("*") if p.is_file()) if raw.is_dir() else [raw]
    named = [p for p in files if p.name in error]
    for suspects in ([p for p in named if p in new], named, new):
        if len(suspects) == 1:
            return project.rel(suspects[0])
    return None


def headline(project: Project, stage: str | None, error: Exception, new: list[Path]) -> str:
    cause = " ".join(str(error).split())
    where = f"stage {stage}" if stage else "the pipeline"
    new = [p for p in new if p.suffix in SUFFIXES]  # tables: not the arrival order's record
    batch = blame(project, cause, new)
    if batch is not None:
        who = f"batch {batch} broke the retrain at {where}"
    elif new:
        who = f"{where} failed (batches new since the last run: "
        who += ", ".join(project.rel(p) for p in new) + ")"
    else:
        who = f"{where} failed"
    return f"{who}: {cause} -- workspace restored (dvc.lock and stage outputs as before the run)"


@contextmanager
def restored_on_failure(
    project: Project, warn: Callable[[str], None] | None = None, keep: Path | None = None
) -> Iterator[Progress]:
    """Run a retrain's stages; on any error put dvc.lock and the stage outputs back and raise
    StageFailed (one line: the batch or stage, the cause).

    Args:
        keep: where the saved state lies while the stages run (default: a temporary folder):
            a run killed outright (SIGKILL) leaves it there for `recover_killed`.

    Yields:
        A Progress whose `stage` the caller sets before each stage.
    """
    progress = Progress()
    with _state_folder(keep) as folder:
        state = dvc.save_pipeline_state(project.root, folder / "copies")
        _write_manifest(folder, state, project.root)  # last: without it, never complete
        try:
            yield progress
        except (GeneratorExit, StopIteration):
            raise
        except BaseException as err:
            # DVC may still run: a second signal cuts `dvc.run`'s stop short, and the stage
            # would write over the restore (its record lies in `folder`; none: a no-op).
            stop_recorded(folder / DVC_RECORD)
            if not isinstance(err, Exception):  # cancelled (SIGTERM) or interrupted (Ctrl-C)
                _restore_interrupted(project, state, folder, err, warn)
                raise
            new = dvc.new_since_lock(project.root, state.lock_text, project.params.paths.raw_data)
            message = headline(project, progress.stage, err, new)
            try:
                _restore(project, state, folder)
            except RetrainError as failed:  # say so: the next retrain tries again
                message = message.replace(
                    "workspace restored", f"restore FAILED ({failed}); {_AGAIN}"
                )
            if warn is not None:
                warn(message)
            raise StageFailed(message) from err


# A restore that did not finish leaves the saved state (keep) for `recover_killed`.
_AGAIN = "the next retrain restores it, or restore by hand"


def _restore(project: Project, state: dvc.PipelineState, folder: Path) -> None:
    """Put the saved state back; only once it is back is the manifest removed, so a restore
    that fails or is cut short (a second signal) leaves it for the next retrain."""
    dvc.restore_pipeline_state(project.root, state)
    (folder / MANIFEST).unlink(missing_ok=True)


def _restore_interrupted(
    project: Project,
    state: dvc.PipelineState,
    folder: Path,
    err: BaseException,
    warn: Callable[[str], None] | None,
) -> None:
    """Put the workspace back after a run was stopped (the caller re-raises the signal, so the
    run ends Cancelled, not Failed): the stage that ran was stopped by then (infra.dvc.run)."""
    why = type(err).__name__
    try:
        _restore(project, state, folder)
        message = f"run stopped ({why}): workspace restored (dvc.lock and stage outputs as before)"
    except RetrainError as failed:
        message = f"run stopped ({why}): restore FAILED ({failed}); {_AGAIN}"
    if warn is not None:
        warn(message)


MANIFEST = "manifest.json"


@contextmanager
def _state_folder(keep: Path | None) -> Iterator[Path]:
    """`keep` (emptied first) or a temporary folder. `keep` is removed when the block ends,
    unless it still holds its manifest after an error: the restore did not finish (it failed,
    or a second signal cut it short), and the next retrain's `recover_killed` needs it."""
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="retrain-restore-") as tmp:
            yield Path(tmp)
        return
    shutil.rmtree(keep, ignore_errors=True)
    keep.mkdir(parents=True)
    try:
        yield keep
    except BaseException:
        if not (keep / MANIFEST).exists():
            shutil.rmtree(keep, ignore_errors=True)
        raise
    # The manifest first: a kill during the rmtree must not leave one without its copies.
    (keep / MANIFEST).unlink(missing_ok=True)
    shutil.rmtree(keep, ignore_errors=True)


def _write_manifest(folder: Path, state: dvc.PipelineState, root: Path) -> None:
    """Written whole or not at all (a rename): a folder without it holds nothing to restore.
    It names the commit the run started on: a state saved on another commit is not put back."""
    copies = {str(out): None if copy is None else str(copy) for out, copy in state.copies.items()}
    since = datetime.now(UTC).isoformat(timespec="seconds")
    manifest = {"lock_text": state.lock_text, "copies": copies, "pid": os.getpid()}
    manifest.update(since=since, head=_head(root))
    part = folder / (MANIFEST + ".part")
    part.write_text(json.dumps(manifest))
    part.replace(folder / MANIFEST)


def _same_lock(root: Path, saved: str | None) -> bool:
    """Whether the checkout is on the commit `saved`, or on one with the same dvc.lock and
    dvc.yaml (the saved outputs are those of its stages): an ingest that ran since (it commits
    data.dvc) leaves the saved state the one to put back."""
    head = _head(root)
    if head == saved:
        return True
    if head is None or saved is None:
        return False
    files = (dvc.LOCK_FILE, dvc.PIPELINE_FILE)
    same = git.run(root, "diff", "--quiet", saved, head, "--", *files, check=False)
    return same.returncode == 0  # 1: one differs; 128: `saved` is gone (a rebase)


def _head(root: Path) -> str | None:
    """The checkout's commit (None outside git or before its first commit)."""
    done = git.run(root, "rev-parse", "HEAD", check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def recover_killed(project: Project, keep: Path, say: Callable[[str], None]) -> bool:
    """Put dvc.lock and the stage outputs back as they were before a run that was killed
    mid-pipeline (its saved state left in `keep`); say so in one line. Call it holding the
    retrain lock (the run that saved it is then gone). True if it restored.

    The killed run's `dvc repro` (its own session, recorded in `lock.dvc_record`) outlives it;
    taking the lock stopped it, or its stage would write over the restored outputs.
    """
    manifest = keep / MANIFEST
    if not manifest.exists():
        shutil.rmtree(keep, ignore_errors=True)  # killed while saving: nothing was changed yet
        return False
    saved = json.loads(manifest.read_text())
    if not _same_lock(project.root, saved.get("head")):
        # The checkout moved on to another pipeline (a pull, a commit): the state saved before
        # the kill is another commit's, and putting it back would undo that commit's dvc.lock.
        shutil.rmtree(keep)
        say(
            f"not restored: a retrain (pid {saved['pid']}, {saved['since']}) was killed "
            f"mid-pipeline on commit {str(saved.get('head'))[:12]}, and the checkout is now on "
            "another; its saved state is dropped (check `git status` and `dvc status`)"
        )
        return False
    copies = {Path(out): None if c is None else Path(c) for out, c in saved["copies"].items()}
    dvc.restore_pipeline_state(project.root, dvc.PipelineState(saved["lock_text"], copies))
    shutil.rmtree(keep)
    say(
        f"restored dvc.lock and the stage outputs: a retrain (pid {saved['pid']}, "
        f"{saved['since']}) was killed mid-pipeline; this run starts from the state before it"
    )
    return True
