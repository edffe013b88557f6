"""Git plumbing for records; the client itself is `retrain.infra.git` (kept importable here)."""

from __future__ import annotations

from retrain.infra.git import (
    GitError,
    build_commit,
    changed_paths,
    git,
    head,
    identity_env,
    ignored,
    last_tag_time,
    make_tag,
    publish,
    show,
    tag_clock,
)

__all__ = [
    "GitError",
    "build_commit",
    "changed_paths",
    "git",
    "head",
    "identity_env",
    "ignored",
    "last_tag_time",
    "make_tag",
    "publish",
    "show",
    "tag_clock",
]
