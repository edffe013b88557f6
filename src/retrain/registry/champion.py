"""The production model as the champion: its files, its tuned parameters (the warm start of
the next study) and its scores on the current holdout next to the challenger's.

The holdout is the current test split. With `registry.gate.unseen_only`, rows either model
trained or validated on are left out, by id and by feature values: the split is redrawn when
new data arrives, so part of today's test split was the champion's training data, and scoring
the champion on it would flatter it; a row whose features repeat a training row under another
id (a re-export, a copied batch) would flatter the challenger the same way (issue 12.5: +0.12
ROC AUC from copies). Repeated feature rows within the test split count once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.analysis.calibration import ConformalInterval
from retrain.analysis.slices import SliceRule
from retrain.config import Params
from retrain.data.clean import targets
from retrain.errors import RetrainError
from retrain.files import json_text, write_text
from retrain.infra.git import show
from retrain.model_key import upgrade_metrics
from retrain.registry import gate, versions
from retrain.registry.serving import (
    ArtifactMissing,
    ServedModel,
    file_md5,
    load_version,
    materialize,
    rel,
)
from retrain.task import task_for


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
    # A champion recorded before the rename says `mlp`: read as `tabm` (retrain.model_key).
    metrics = upgrade_metrics(json.loads(metrics_text))[0] if metrics_text else None
    return Champion(model, tuned, metrics)


def warm_start(champion: Champion | None) -> dict[str, Any]:
    """What the tune stage reads from paths.warm_start (a dependency of tune in dvc.yaml)."""
    if champion is None or not champion.tuned_params:
        return {"champion": None, "params": None}
    return {"champion": champion.model.label, "params": champion.tuned_params.get("params")}


def write_warm_start(path: Path, content: dict[str, Any]) -> bool:
    """Write the warm-start file atomically; False when it already holds `content`."""
    text = json_text(content)
    if path.exists() and path.read_text() == text:
        return False
    write_text(path, text)
    return True


def _scores(onnx: Path, preprocessor: Path, frame: pd.DataFrame) -> Any:
    from retrain.models.predictor import Predictor

    return Predictor(preprocessor, onnx).predict_proba(frame)


def feature_keys(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """One hash per row of its feature values (a gap equals a gap), to find repeated rows."""
    return pd.util.hash_pandas_object(frame[features].astype(str), index=False).to_numpy()


def unseen_rows(
    test: pd.DataFrame,
    features: list[str],
    seen: list[pd.DataFrame],
    id_column: str | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    """Which test rows no model has seen: not by id, not by feature values, each once.

    Args:
        test: the holdout candidates.
        features: the columns that make a row the same row to a model.
        seen: the frames the models trained or validated on.
        id_column: also match on ids when the table has them.

    Returns:
        A boolean mask over `test`, and how many rows each rule removed.
    """
    keys = feature_keys(test, features)
    seen_keys = (
        np.concatenate([feature_keys(f, features) for f in seen])
        if seen
        else np.empty(0, dtype=np.uint64)
    )
    by_features = np.isin(keys, seen_keys)
    by_id = np.zeros(len(test), dtype=bool)
    if id_column and id_column in test.columns:
        ids = set().union(*(set(f[id_column].tolist()) for f in seen if id_column in f))
        by_id = test[id_column].isin(ids).to_numpy()
    seen_mask = by_features | by_id
    repeated = pd.Series(keys).duplicated().to_numpy() & ~seen_mask
    counts = {
        "excluded_seen_by_id": int(by_id.sum()),
        "excluded_seen_by_features": int((by_features & ~by_id).sum()),
        "excluded_repeated_in_test": int(repeated.sum()),
    }
    return ~seen_mask & ~repeated, counts


def _seen_frames(root: Path, params: Params, champion: Champion) -> list[pd.DataFrame]:
    paths = params.paths
    wanted = [rel(root, paths.train), rel(root, paths.val)]
    files = materialize(
        root, champion.model.version.commit, wanted, paths.serving_dir / "_seen" / "split"
    )
    return [pd.read_parquet(path) for path in files.values()]


def _holdout(
    root: Path, params: Params, champion: Champion | None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The test rows the gate scores both models on, and how they were chosen."""
    paths, schema = params.paths, params.dataset
    test = pd.read_parquet(paths.test)
    holdout: dict[str, Any] = {"test_rows": len(test)}
    frame = test
    if params.registry.gate.unseen_only:
        # The challenger's own train/val: a test row repeating one of them flatters it.
        seen = [pd.read_parquet(paths.train), pd.read_parquet(paths.val)]
        own = len(seen)
        if champion is not None:
            try:
                seen += _seen_frames(root, params, champion)
            except ArtifactMissing as err:
                # The gate still works; the record says the champion's rows were not removed.
                holdout["unseen_only_skipped"] = str(err)
        keep, counts = unseen_rows(test, schema.features, seen, schema.id_column)
        holdout.update(counts)
        if len(seen) > own:
            by_champion, c = unseen_rows(test, schema.features, seen[own:], schema.id_column)
            repeated = c["excluded_repeated_in_test"]
            holdout["excluded_seen_by_champion"] = int((~by_champion).sum()) - repeated
        frame = test[keep]
    frame = frame.reset_index(drop=True)
    holdout["rows"] = len(frame)
    return frame, holdout


def challenger_interval(params: Params) -> ConformalInterval | None:
    """The workspace model's conformal interval (regression only; paths.intervals, written by
    `train`); None where the task has none or the file is missing: the gate then says so and
    does not promote."""
    if task_for(params.dataset).kind != "regression" or not params.paths.intervals.exists():
        return None
    interval = ConformalInterval.load(params.paths.intervals)
    if interval.level != params.train.interval_level:
        # The gate judges the coverage against train.interval_level: an interval fitted at
        # another level is stale (train has not rerun since the level changed).
        raise RetrainError(
            f"{params.paths.intervals}: level {interval.level} is not train.interval_level "
            f"{params.train.interval_level}; rerun `dvc repro train`"
        )
    return interval


def challenge(root: Path, params: Params, champion: Champion | None) -> gate.GateResult:
    """Score the workspace model (challenger) and the champion on the same holdout; decide."""
    paths, cfg = params.paths, params.registry.gate
    bins, rule = params.evaluate.calibration_bins, SliceRule.from_params(params)
    task = task_for(params.dataset)
    if champion is not None and file_md5(paths.onnx_model) == file_md5(champion.model.onnx):
        applied = gate.rules(cfg, rule, bins, params.seed, task)
        return gate.unchanged(cfg.metric, cfg.margin, champion.model.label, applied)
    frame, holdout = _holdout(root, params, champion)
    if frame.empty:  # nothing to score: too little evidence (the metric is undefined)
        shape = (0, task.n_outputs) if task.kind == "multiclass" else (0,)
        ours, theirs = np.empty(shape), (np.empty(shape) if champion else None)
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
        rule=rule,
        calibration_bins=bins,
        holdout=holdout,
        seed=params.seed,
        task=task,
        interval=challenger_interval(params),
    )
