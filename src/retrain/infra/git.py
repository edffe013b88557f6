"""The one git client: every git command of the project goes through `run`.

Records (`retrain.registry`) build a commit and tags out of sight and publish them at once:
all objects are written first (invisible: no ref points at them); one `git update-ref
--stdin` transaction then creates every tag and moves the branch, so a retrain killed at any
point leaves either the whole record or none of it. The pull-request check
(`retrain.prcheck`) asks which commit a ref names and what a file held at it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from retrain.errors import RetrainError


class GitError(RetrainError):
    """A git command failed (the message carries its last lines), or a ref names no commit."""


def run(
    repo: Path,
    *args: str,
    check: bool = True,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `git *args` in `repo`; with `check`, a non-zero exit raises GitError."""
    proc = subprocess.run(
        ["git", *args], cwd=repo, input=stdin, capture_output=True, text=True, env=env
    )
    if check and proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise GitError(f"git {' '.join(args[:3])} failed in {repo}: {tail or proc.returncode}")
    return proc


def git(
    repo: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> str:
    """Run `git *args` in `repo` and return its stdout; a failure raises GitError."""
    return run(repo, *args, stdin=stdin, env=env).stdout


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def show(repo: Path, rev: str, path: str) -> str | None:
    """The file `path` as committed at `rev`, or None when it is not there."""
    proc = run(repo, "show", f"{rev}:{path}", check=False)
    return proc.stdout if proc.returncode == 0 else None


def toplevel(path: Path) -> Path:
    """The root of the git checkout holding `path`."""
    try:
        out = git(path, "rev-parse", "--show-toplevel").strip()
    except GitError:
        raise GitError(f"{path}: not inside a git checkout") from None
    return Path(out)


def resolve(repo: Path, ref: str) -> str:
    """The full commit hash `ref` names; a clear error when the clone lacks it."""
    proc = run(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if proc.returncode != 0:
        raise GitError(
            f"base ref {ref!r} is not a commit in this clone; fetch it first "
            f"(`git fetch origin {ref}`; in CI check out with fetch-depth: 0)"
        )
    return proc.stdout.strip()


def files_at(repo: Path, commit: str, folder: str) -> list[str]:
    """Paths tracked under `folder` at `commit` (repository-relative, sorted)."""
    out = git(repo, "ls-tree", "-r", "--name-only", commit, "--", folder)
    return sorted(line for line in out.splitlines() if line)


def describe_head(repo: Path) -> str:
    """Short hash of HEAD, and whether the working tree has uncommitted changes."""
    head = run(repo, "rev-parse", "--short", "HEAD", check=False).stdout.strip() or "no commit"
    dirty = run(repo, "status", "--porcelain", "--untracked-files=no", check=False).stdout
    return f"{head} + uncommitted changes" if dirty.strip() else head


def changed_paths(repo: Path, *pathspec: str) -> list[str]:
    """Tracked paths that differ from HEAD (staged or not), optionally only those matching
    `pathspec`; untracked files are not listed."""
    spec = ["--", *pathspec] if pathspec else []
    out = git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=no", *spec)
    paths = []
    entries = iter(out.split("\0"))
    for entry in entries:
        if not entry:
            continue
        status, path = entry[:2], entry[3:]
        paths.append(path)
        if "R" in status or "C" in status:
            paths.append(next(entries))  # a rename lists its source as the next entry
    return paths


def under(path: str, roots: Iterable[str]) -> bool:
    """`path` is one of `roots` or inside one of them (repository-relative, '/'-separated)."""
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def changed_code(repo: Path, managed: Iterable[str]) -> list[str]:
    """Tracked paths that differ from HEAD, except those under `managed` (what the pipeline
    itself writes: params, dvc.lock, its outputs)."""
    roots = list(managed)
    return [p for p in changed_paths(repo) if not under(p, roots)]


def revision(repo: Path, managed: Iterable[str] = ()) -> str:
    """HEAD's commit, with '-dirty' when tracked code (anything not under `managed`) differs
    from it; 'unknown' outside a git checkout."""
    try:
        commit = head(repo)
        dirty = changed_code(repo, managed)
    except (GitError, OSError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def identity_env(repo: Path) -> dict[str, str]:
    """The environment for commits and tags; a default identity when git has none."""
    env = dict(os.environ)
    if run(repo, "var", "GIT_COMMITTER_IDENT", check=False).returncode != 0:
        for role in ("AUTHOR", "COMMITTER"):
            env.setdefault(f"GIT_{role}_NAME", "retrain")
            env.setdefault(f"GIT_{role}_EMAIL", "retrain@localhost")
    return env


def _ident(repo: Path, env: dict[str, str]) -> str:
    """'Name <email>' of the committer git would use."""
    line = git(repo, "var", "GIT_COMMITTER_IDENT", env=env).strip()
    return line.rsplit(" ", 2)[0]


def ignored(repo: Path, paths: Iterable[str]) -> set[str]:
    """The subset of `paths` that .gitignore excludes."""
    listed = "\n".join(paths)
    if not listed:
        return set()
    proc = run(repo, "check-ignore", "--stdin", stdin=listed, check=False)
    if proc.returncode not in (0, 1):  # 1: none of them is ignored
        raise GitError(f"git check-ignore failed in {repo}: {proc.stderr.strip()}")
    return set(proc.stdout.split("\n")) - {""}


def build_commit(
    repo: Path,
    paths: list[str],
    message: str,
    extra_files: dict[str, str],
    env: dict[str, str],
    parent: str = "HEAD",
) -> str:
    """A commit of `parent` (default HEAD) plus the workspace state of `paths` and the given
    file contents.

    Neither the branch nor the real index moves: the tree is built in a temporary index.

    Args:
        repo: the checkout.
        paths: workspace paths (files or folders, relative to `repo`) to take as they are;
            ignored ones are skipped.
        message: the commit message.
        extra_files: path -> text written into the commit only (the workspace copy is
            written after the record is published).
        env: from `identity_env`.
        parent: the commit to build on.
    """
    tracked = set(git(repo, "ls-files", "--", *paths).splitlines()) if paths else set()
    present = [p for p in paths if (repo / p).exists() or _tracked_under(p, tracked)]
    skip = ignored(repo, present)
    to_add = [p for p in present if p not in skip]
    with tempfile.TemporaryDirectory(prefix="retrain-index-") as tmp:
        index_env = {**env, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(repo, "read-tree", parent, env=index_env)
        if to_add:
            git(repo, "add", "-A", "--", *to_add, env=index_env)
        for rel, text in extra_files.items():
            blob = git(repo, "hash-object", "-w", "--stdin", stdin=text, env=index_env).strip()
            git(
                repo,
                "update-index",
                "--add",
                "--cacheinfo",
                f"100644,{blob},{rel}",
                env=index_env,
            )
        tree = git(repo, "write-tree", env=index_env).strip()
    return git(repo, "commit-tree", tree, "-p", parent, "-m", message, env=env).strip()


def _tracked_under(path: str, tracked: set[str]) -> bool:
    """`path` is tracked, or a folder holding tracked files (deleted ones included)."""
    return path in tracked or any(t.startswith(path.rstrip("/") + "/") for t in tracked)


def last_tag_time(repo: Path) -> int:
    """The newest tagger time (Unix seconds) among annotated tags; 0 when there are none."""
    out = git(repo, "for-each-ref", "--format=%(taggerdate:unix)", "refs/tags")
    times = [int(t) for t in out.split() if t.strip().isdigit()]
    return max(times, default=0)


def tag_clock(repo: Path) -> int:
    """A tag time after every existing tag's: GTO orders events by time (whole seconds), so
    two events in the same second must not tie."""
    return max(int(time.time()), last_tag_time(repo) + 1)


def make_tag(
    repo: Path, name: str, target: str, message: str, when: int, env: dict[str, str]
) -> str:
    """An annotated tag object for `target` (no ref yet); returns the object's id."""
    body = (
        f"object {target}\ntype commit\ntag {name}\n"
        f"tagger {_ident(repo, env)} {when} +0000\n\n{message.rstrip()}\n"
    )
    return git(repo, "mktag", stdin=body, env=env).strip()


def publish(repo: Path, tags: dict[str, str], move_head: tuple[str, str] | None = None) -> None:
    """Create refs/tags/<name> -> object for every tag and move HEAD's branch, all or nothing.

    Args:
        repo: the checkout.
        tags: tag name -> tag object id; an existing tag of the same name fails the whole.
        move_head: (new commit, expected current commit); fails if HEAD moved meanwhile.
    """
    lines = ["start"]
    lines += [f"create refs/tags/{name} {obj}" for name, obj in tags.items()]
    if move_head is not None:
        new, old = move_head
        lines.append(f"update HEAD {new} {old}")
    lines += ["prepare", "commit", ""]
    git(repo, "update-ref", "--stdin", stdin="\n".join(lines))
