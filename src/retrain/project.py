"""The project: a checkout's root and its params, every path absolute under the root.

Built once at the edge (the CLI's callback, each flow's start) and handed down, so no code
below names a file by a literal: every path comes from params.yaml's `paths`, and renaming
one there renames it everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from retrain.config import PARAMS_FILE, Params, load_params_at
from retrain.infra.dvc import LOCK_FILE

__all__ = ["PARAMS_FILE", "Project", "managed_paths"]


@dataclass(frozen=True)
class Project:
    """A checkout at `root` configured by `params_file`; `params.paths` are absolute."""

    root: Path
    params: Params
    params_file: Path

    @classmethod
    def load(cls, root: Path | str = ".", params_file: Path | str | None = None) -> Project:
        """The checkout at `root`; its params from `params_file` (default root/params.yaml).

        Raises:
            ConfigError: the params file is missing or invalid.
        """
        root = Path(root).resolve()
        file = Path(params_file).resolve() if params_file else root / PARAMS_FILE
        return cls(root, load_params_at(root, file), file)

    @classmethod
    def from_params_file(cls, params_file: Path | str) -> Project:
        """The checkout a params file configures: the folder holding it."""
        file = Path(params_file).resolve()
        return cls.load(file.parent, file)

    @property
    def lock_file(self) -> Path:
        """DVC's dvc.lock (a fixed name, beside dvc.yaml at the root)."""
        return self.root / LOCK_FILE

    def rel(self, path: Path) -> str:
        """`path` relative to the root, as git and dvc.lock write it."""
        return rel(self.root, path)

    def managed_paths(self) -> list[str]:
        return managed_paths(self.root, self.params, self.params_file)


def rel(root: Path, path: Path) -> str:
    """`path` (absolute or relative to the working directory) relative to `root`."""
    return path.resolve().relative_to(root.resolve()).as_posix()


def managed_paths(root: Path, params: Params, params_file: Path | None = None) -> list[str]:
    """What a run may change and a record commits: the params file, dvc.lock and every path
    in params.yaml's `paths` inside the checkout. Anything else tracked is code.

    Args:
        root: the checkout.
        params: its params (paths absolute, or relative to the working directory).
        params_file: the params file, by default root/params.yaml.
    """
    found = []
    listed = [params_file or root / PARAMS_FILE, root / LOCK_FILE]
    for path in [*listed, *params.paths.model_dump().values()]:
        try:
            found.append(rel(root, Path(path)))
        except ValueError:
            continue  # outside the checkout: not ours to commit
    return list(dict.fromkeys(found))
