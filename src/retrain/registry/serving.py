"""A registered version's files, materialised from the DVC cache (or remote) of its commit.

The version's commit pins every output in its dvc.lock; the files are looked up by that
hash in the local DVC cache and, when absent there (another machine, a `dvc gc`), read from
the DVC remote through `dvc.api`. Whatever the workspace holds (a challenger that lost the
gate, a half-trained model) never reaches the predict flow.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from retrain.config import Params
from retrain.errors import RetrainError
from retrain.hashing import file_md5
from retrain.infra.dvc import LOCK_FILE, cached_file, lock_outputs
from retrain.infra.git import show
from retrain.project import rel
from retrain.registry import versions
from retrain.scoring import Interval


class NoProdModel(RetrainError):
    """No version is in the serving stage yet."""


class ArtifactMissing(RetrainError):
    """A pinned file is in neither the DVC cache nor the remote, or its bytes do not match."""


def materialize(root: Path, commit: str, rel_paths: list[str], dest: Path) -> dict[str, Path]:
    """Copy the files `rel_paths` as pinned by `commit`'s dvc.lock into `dest`.

    Returns:
        rel path -> the copy under `dest` (same file name); each copy's md5 is checked.

    Raises:
        ArtifactMissing: the commit pins no such output, or its bytes cannot be found.
    """
    lock_text = show(root, commit, LOCK_FILE)
    if lock_text is None:
        raise ArtifactMissing(f"commit {commit[:12]} has no dvc.lock")
    outs = lock_outputs(lock_text)
    dest.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    for path in rel_paths:
        if path not in outs:
            raise ArtifactMissing(f"{path} is not an output in dvc.lock of {commit[:12]}")
        md5 = outs[path]
        target = dest / Path(path).name
        if not (target.is_file() and file_md5(target) == md5):
            tmp = target.with_name(target.name + ".tmp")
            cached = cached_file(root, md5)
            if cached is not None:
                shutil.copyfile(cached, tmp)
            else:
                _from_remote(root, commit, path, tmp)
            if file_md5(tmp) != md5:
                tmp.unlink()
                raise ArtifactMissing(f"{path} of {commit[:12]}: content does not match {md5}")
            tmp.replace(target)
        found[path] = target
    return found


def _from_remote(root: Path, commit: str, rel: str, out: Path) -> None:
    import dvc.api

    try:
        with (
            dvc.api.open(rel, repo=str(root), rev=commit, mode="rb") as src,
            out.open("wb") as dst,
        ):
            shutil.copyfileobj(src, dst)
    except Exception as err:  # DVC raises many kinds; all mean "not obtainable"
        out.unlink(missing_ok=True)
        raise ArtifactMissing(
            f"{rel} of {commit[:12]} is in neither the DVC cache nor the remote: {err}"
        ) from None


@dataclass(frozen=True)
class ServedModel:
    """A registered version ready to score: its ONNX model and preprocessor, and what its
    task needs to show a prediction: a binary model's threshold, a regression model's
    prediction interval (`intervals`, paths.intervals as that version's train wrote it)."""

    version: versions.ModelVersion
    onnx: Path
    preprocessor: Path
    threshold: float | None
    intervals: Path | None = None
    interval: Interval | None = None

    @property
    def label(self) -> str:
        return self.version.tag

    @property
    def files(self) -> list[Path]:
        """The files that are the served model (each md5-checked against dvc.lock)."""
        return [self.onnx, self.preprocessor] + ([self.intervals] if self.intervals else [])


def load_version(root: Path, params: Params, version: versions.ModelVersion) -> ServedModel:
    """Materialise `version` under paths.serving_dir/<version>/ with what its task needs:
    a binary model's threshold (from its metrics), a regression model's intervals.json.

    Raises:
        ArtifactMissing: a pinned file cannot be found, or a regression version's commit
            pins no intervals.json (its path named). DataError: that file is no interval.
    """
    paths = params.paths
    kind = params.dataset.task
    onnx, pre = rel(root, paths.onnx_model), rel(root, paths.preprocessor)
    wanted = [onnx, pre]
    intervals = rel(root, paths.intervals) if kind == "regression" else None
    if intervals is not None:
        lock = show(root, version.commit, LOCK_FILE) or ""
        if intervals not in lock_outputs(lock):
            raise ArtifactMissing(
                f"{version.tag}: no {intervals} in its commit's {LOCK_FILE}; a regression "
                "model is served with the prediction interval its train stage writes there "
                "(paths.intervals)"
            )
        wanted.append(intervals)
    files = materialize(root, version.commit, wanted, paths.serving_dir / version.version)
    threshold = _threshold(root, params, version) if kind == "binary" else None
    served = files[intervals] if intervals is not None else None
    interval = Interval.load(served) if served is not None else None
    return ServedModel(version, files[onnx], files[pre], threshold, served, interval)


def _threshold(root: Path, params: Params, version: versions.ModelVersion) -> float:
    metrics = show(root, version.commit, rel(root, params.paths.metrics))
    if metrics is None:
        raise ArtifactMissing(f"{version.tag}: no {rel(root, params.paths.metrics)} in its commit")
    return float(json.loads(metrics)["threshold"])


def prod_model(root: Path, params: Params) -> ServedModel:
    """The version in the serving stage (registry.stage), materialised.

    Raises:
        NoProdModel: no version has been promoted yet (run a retrain first).
    """
    reg = params.registry
    current = versions.in_stage(root, reg.model_name, reg.stage)
    if current is None:
        raise NoProdModel(
            f"no version of {reg.model_name} is in {reg.stage}: run a retrain first "
            "(the first trained model becomes prod)"
        )
    return load_version(root, params, current)
