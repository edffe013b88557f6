"""Publishing a built record (registry.record.build): the steps that write to git.

1. the record commit: the pipeline's managed paths plus the record file, on top of HEAD;
2. its tags: `run/<id>` (annotated) and the GTO tags (a new version, a promotion);
3. with run-only overrides, one more commit on top that puts back the params.yaml the run
   found, so the branch keeps the committed one (registry.overrides);
4. one ref transaction publishes the tags and moves HEAD (infra.git.publish): all or nothing;
5. only then the workspace and the index catch up with the new HEAD.
Everything before step 4 writes only git objects: a run that dies there leaves no record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from retrain.config import PARAMS_FILE, Params
from retrain.infra.git import build_commit, git, head, identity_env, make_tag, publish, tag_clock
from retrain.project import managed_paths, rel
from retrain.registry import versions


@dataclass(frozen=True)
class Publication:
    """What the git side needs to know about a built record."""

    run_id: str
    message: str  # the commit's and the tag's message (record.summary)
    register: str | None  # the version to register; None registers nothing
    promote: bool
    params_before: str | None  # with run-only overrides: the params.yaml to put back


def record_commit(root: Path, params: Params, text: str, message: str, env: dict[str, str]) -> str:
    """Step 1: a commit of the managed paths as the run left them, with the record's text."""
    record_rel = rel(root, params.paths.run_record)
    managed = [p for p in managed_paths(root, params) if p != record_rel]
    return build_commit(root, managed, message, {record_rel: text}, env)


def tags(
    root: Path, params: Params, commit: str, pub: Publication, env: dict[str, str]
) -> dict[str, str]:
    """Step 2: the run tag and the GTO tags (tag name -> tag object), not yet published."""
    reg = params.registry
    run_tag = f"run/{pub.run_id}"
    made = {run_tag: make_tag(root, run_tag, commit, pub.message, tag_clock(root), env)}
    made.update(
        versions.version_tags(
            root,
            reg.model_name,
            reg.stage,
            commit,
            register=pub.register,
            promote=pub.promote,
            note=f"run {pub.run_id}",
            env=env,
        )
    )
    return made


def restore_params_commit(root: Path, commit: str, pub: Publication, env: dict[str, str]) -> str:
    """Step 3: the branch's head: `commit`, or a commit on it that puts params.yaml back."""
    if pub.params_before is None:
        return commit
    return build_commit(
        root,
        [],
        f"params.yaml as committed, after run {pub.run_id} (its overrides were for it only)",
        {PARAMS_FILE: pub.params_before},
        env,
        parent=commit,
    )


def sync_workspace(root: Path, record_file: Path, text: str) -> None:
    """Step 5: the record file in the workspace (atomically) and the index at the new HEAD."""
    tmp = record_file.with_name(record_file.name + ".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(text)
    os.replace(tmp, record_file)
    git(root, "reset", "-q")


def publish_record(root: Path, params: Params, text: str, pub: Publication) -> None:
    """Commit, tag and publish the record `text` at once; then sync the workspace."""
    env = identity_env(root)
    old = head(root)
    commit = record_commit(root, params, text, pub.message, env)
    made = tags(root, params, commit, pub, env)
    branch = restore_params_commit(root, commit, pub, env)
    publish(root, made, move_head=(branch, old))
    # Published: now the workspace and the index catch up with the new HEAD.
    sync_workspace(root, params.paths.run_record, text)
