"""The git questions the pull-request check asks; the client is `retrain.infra.git`.

`git` here is the client's `run` (a CompletedProcess, `check=` to allow failure), as before.
"""

from __future__ import annotations

from retrain.infra.git import GitError, describe_head, files_at, resolve, show, toplevel
from retrain.infra.git import run as git

__all__ = ["GitError", "describe_head", "files_at", "git", "resolve", "show", "toplevel"]
