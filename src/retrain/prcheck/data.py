"""The head's data against the base's: which files changed, and the base's data itself.

The base's data comes from DVC (the cache, else the remote) at the base commit's data.dvc,
never from the head's workspace: a pull request cannot change what it is compared with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from retrain.config import DatasetSchema
from retrain.data.io import read_file, table_files
from retrain.errors import DataError
from retrain.hashing import file_md5
from retrain.infra.dvc import in_cache


class BaseDataUnavailable(DataError):
    """The base's pinned data is in neither the DVC cache nor the remote."""


@dataclass(frozen=True)
class FileChange:
    """One data file of the raw folder, at the base and at the head."""

    path: str
    status: str  # added, removed, modified or unchanged
    base_rows: int | None
    head_rows: int | None


@dataclass
class DataComparison:
    """The pins at both ends, where the base's data came from, and the file-level diff."""

    path: str
    base_pin: str | None
    head_pin: str | None
    head_workspace: str | None  # DVC's hash of the head's data as it is on disk
    base_source: str | None = None  # "DVC cache" or "DVC remote"
    files: list[FileChange] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """Same pin at both ends and the head's workspace holds exactly that data."""
        return self.base_pin is not None and self.base_pin == self.head_pin == self.head_workspace

    @property
    def unpinned(self) -> bool:
        """The head's workspace data differs from what its data.dvc pins."""
        return self.head_workspace is not None and self.head_workspace != self.head_pin

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["identical"] = self.identical
        out["unpinned"] = self.unpinned
        return out


def fetch_base_data(root: Path, commit: str, raw_rel: str, dest: Path, md5: str) -> str:
    """Copy the data that `commit` pins at `raw_rel` to `dest`, from the DVC cache or remote.

    Returns:
        "DVC cache" or "DVC remote": where it came from.

    Raises:
        BaseDataUnavailable: neither holds it (not pushed, or no remote configured).
    """
    from dvc.fs import DVCFileSystem

    source = "DVC cache" if in_cache(root, md5) else "DVC remote"
    try:
        fs = DVCFileSystem(url=str(root), rev=commit)
        fs.get(raw_rel, str(dest), recursive=True)
    except Exception as err:  # DVC raises many types (index, remote, auth); the user needs one
        cause = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise BaseDataUnavailable(
            f"{raw_rel} at the base ({md5}) is neither in the DVC cache nor on the remote "
            f"({cause}); push it from the base branch (`dvc push`), and in CI give the job "
            "access to the shared remote"
        ) from None
    if not any(dest.rglob("*")):
        raise BaseDataUnavailable(f"{raw_rel} at the base ({md5}): DVC returned no files")
    return source


def read_folder(path: Path) -> dict[str, pd.DataFrame]:
    """Relative file name -> table, for a raw data file or folder."""
    files = table_files(path)
    base = path if path.is_dir() else path.parent
    return {str(f.relative_to(base)): read_file(f) for f in files}


def file_changes(
    base: Path, head: Path, base_frames: dict[str, pd.DataFrame], head_frames: dict[str, Any]
) -> list[FileChange]:
    """Per-file status and row counts; `head_frames` may lack unreadable files."""

    def hashes(path: Path) -> dict[str, str]:
        folder = path if path.is_dir() else path.parent
        return {str(f.relative_to(folder)): file_md5(f) for f in table_files(path)}

    old, new = hashes(base), hashes(head)
    out = []
    for name in sorted(set(old) | set(new)):
        if name not in old:
            status = "added"
        elif name not in new:
            status = "removed"
        else:
            status = "unchanged" if old[name] == new[name] else "modified"
        b, h = base_frames.get(name), head_frames.get(name)
        out.append(
            FileChange(name, status, None if b is None else len(b), None if h is None else len(h))
        )
    return out


def for_drift(frame: pd.DataFrame, schema: DatasetSchema) -> pd.DataFrame:
    """The declared columns with numbers as numbers, leniently: a value that is not a number
    becomes missing (validation has already named it), so drift can still be measured."""
    from retrain.monitoring.drift import target_is_numeric

    out = frame[[c for c in schema.columns if c in frame.columns]].copy()
    # A regression target is a number too (retrain.task); labels are text.
    numbers = [schema.target] if target_is_numeric(schema) else []
    for col in [*schema.numeric, *numbers]:
        if col in out:
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    for col in [*schema.categorical, *([] if numbers else [schema.target])]:
        if col in out:
            out[col] = out[col].astype("string").astype(object).where(out[col].notna(), None)
    return out


def shared_schema(schema: DatasetSchema, *frames: pd.DataFrame) -> DatasetSchema:
    """`schema` restricted to the feature columns every frame has."""

    def everywhere(cols: list[str]) -> list[str]:
        return [c for c in cols if all(c in f.columns for f in frames)]

    return schema.model_copy(
        update={
            "numeric": everywhere(schema.numeric),
            "categorical": everywhere(schema.categorical),
        }
    )


def _levels(values: pd.Series) -> pd.Series:
    """Category labels as text; 0/1 flags read as 0 and 1, not 0.0 and 1.0."""
    values = values.dropna()
    if pd.api.types.is_float_dtype(values) and (values % 1 == 0).all():
        values = values.astype("int64")
    return values.astype(str)


def describe_shift(base: pd.Series, head: pd.Series, *, numeric: bool) -> str:
    """How a column moved, in one phrase: the mean for numbers; for categories the level
    whose share moved most (a level the base never had is called new)."""
    if numeric:
        b, h = pd.to_numeric(base, errors="coerce"), pd.to_numeric(head, errors="coerce")
        return f"mean {b.mean():.4g} → {h.mean():.4g}"
    b_share = _levels(base).value_counts(normalize=True)
    h_counts = _levels(head).value_counts()
    h_share = h_counts / max(int(h_counts.sum()), 1)
    new = [v for v in h_counts.index if v not in b_share.index]
    if new:  # a level the base never had says more than any share
        level = max(new, key=lambda v: h_counts[v])
        return f"{level!r} new: {int(h_counts[level])} rows ({h_share[level]:.2%})"
    levels = b_share.index.union(h_share.index)
    moved = (h_share.reindex(levels, fill_value=0) - b_share.reindex(levels, fill_value=0)).abs()
    level = str(moved.idxmax())
    return f"{level!r} {b_share.get(level, 0.0):.1%} → {h_share.get(level, 0.0):.1%}"
