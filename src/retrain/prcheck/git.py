"""The few git questions the pull-request check asks: which commit, which file at it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from retrain.errors import RetrainError


class GitError(RetrainError):
    """A git command failed, or the base ref does not name a commit in this clone."""


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise GitError(f"git {' '.join(args)} failed: {msg[-1] if msg else proc.returncode}")
    return proc


def toplevel(path: Path) -> Path:
    """The root of the git checkout holding `path`."""
    try:
        out = git(path, "rev-parse", "--show-toplevel").stdout.strip()
    except GitError:
        raise GitError(f"{path}: not inside a git checkout") from None
    return Path(out)


def resolve(root: Path, ref: str) -> str:
    """The full commit hash `ref` names; a clear error when the clone lacks it."""
    proc = git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if proc.returncode != 0:
        raise GitError(
            f"base ref {ref!r} is not a commit in this clone; fetch it first "
            f"(`git fetch origin {ref}`; in CI check out with fetch-depth: 0)"
        )
    return proc.stdout.strip()


def show(root: Path, commit: str, path: str) -> str | None:
    """The text of `path` at `commit`, or None when the commit has no such file."""
    proc = git(root, "show", f"{commit}:{path}", check=False)
    return proc.stdout if proc.returncode == 0 else None


def files_at(root: Path, commit: str, folder: str) -> list[str]:
    """Paths tracked under `folder` at `commit` (repository-relative, sorted)."""
    out = git(root, "ls-tree", "-r", "--name-only", commit, "--", folder).stdout
    return sorted(line for line in out.splitlines() if line)


def describe_head(root: Path) -> str:
    """Short hash of HEAD, and whether the working tree has uncommitted changes."""
    head = git(root, "rev-parse", "--short", "HEAD", check=False).stdout.strip() or "no commit"
    dirty = git(root, "status", "--porcelain", "--untracked-files=no", check=False).stdout
    return f"{head} + uncommitted changes" if dirty.strip() else head
