"""The production model as the champion: its files, its tuned parameters (the warm start of
the next study) and its scores on the current holdout next to the challenger's.

The holdout is the current test split. With `registry.gate.unseen_only`, rows the champion
trained or validated on are left out (by id): the split is redrawn when new data arrives,
so part of today's test split was the champion's training data, and scoring the champion
on it would flatter it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.config import Params
from retrain.data.clean import targets
from retrain.registry import gate, versions
from retrain.registry.git import show
from retrain.registry.serving import (
    ArtifactMissing,
    ServedModel,
    file_md5,
    load_version,
    materialize,
    rel,
)


@dataclass(frozen=True)
class Champion:
    """The version in production when a retrain starts."""

    model: ServedModel
    tuned_params: dict[str, Any] | None
    metrics: dict[str, Any] | None


def find(root: Path, params: Params) -> Champion | None:
    """The version in `registry.stage`, materialised, or None before the first promotion."""
    reg = params.registry
    current = versions.in_stage(root, reg.model_name, reg.stage)
    if current is None:
        return None
    model = load_version(root, params, current)
    record = show(root, current.commit, rel(root, params.paths.run_record))
    tuned = json.loads(record).get("tuned_params") if record else None
    metrics_text = show(root, current.commit, rel(root, params.paths.metrics))
    metrics = json.loads(metrics_text) if metrics_text else None
    return Champion(model, tuned, metrics)


def warm_start(champion: Champion | None) -> dict[str, Any]:
    """What the tune stage reads from paths.warm_start (a dependency of tune in dvc.yaml)."""
    if champion is None or not champion.tuned_params:
        return {"champion": None, "params": None}
    return {"champion": champion.model.label, "params": champion.tuned_params.get("params")}


def write_warm_start(path: Path, content: dict[str, Any]) -> bool:
    """Write the warm-start file atomically; False when it already holds `content`."""
    text = json.dumps(content, indent=2, sort_keys=True) + "\n"
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True


def _scores(onnx: Path, preprocessor: Path, frame: pd.DataFrame) -> Any:
    from retrain.models.predictor import Predictor

    return Predictor(preprocessor, onnx).predict_proba(frame)


def _seen_ids(root: Path, params: Params, champion: Champion) -> set[Any]:
    paths = params.paths
    wanted = [rel(root, paths.train), rel(root, paths.val)]
    files = materialize(
        root, champion.model.version.commit, wanted, paths.serving_dir / "_seen" / "split"
    )
    column = params.dataset.id_column
    seen: set[Any] = set()
    for path in files.values():
        seen.update(pd.read_parquet(path, columns=[column])[column].tolist())
    return seen


def challenge(root: Path, params: Params, champion: Champion | None) -> gate.GateResult:
    """Score the workspace model (challenger) and the champion on the same holdout; decide."""
    paths, cfg = params.paths, params.registry.gate
    bins = params.evaluate.calibration_bins
    if champion is not None and file_md5(paths.onnx_model) == file_md5(champion.model.onnx):
        return gate.unchanged(cfg.metric, cfg.margin, champion.model.label)
    test = pd.read_parquet(paths.test)
    holdout: dict[str, Any] = {"test_rows": len(test)}
    frame = test
    id_column = params.dataset.id_column
    if champion is not None and cfg.unseen_only and id_column:
        try:
            seen = _seen_ids(root, params, champion)
        except ArtifactMissing as err:
            # The gate still works on the whole split; the record says it is the flattering one.
            holdout["unseen_only_skipped"] = str(err)
        else:
            frame = test[~test[id_column].isin(seen)]
            holdout["excluded_seen_by_champion"] = len(test) - len(frame)
    frame = frame.reset_index(drop=True)
    holdout["rows"] = len(frame)
    if frame.empty:  # nothing to score: the gate rejects (its metric is undefined)
        ours, theirs = np.empty(0), (np.empty(0) if champion else None)
    else:
        ours = _scores(paths.onnx_model, paths.preprocessor, frame)
        theirs = (
            _scores(champion.model.onnx, champion.model.preprocessor, frame) if champion else None
        )
    return gate.decide(
        targets(frame),
        ours,
        theirs,
        frame[cfg.slices],
        cfg,
        calibration_bins=bins,
        holdout=holdout,
    )
