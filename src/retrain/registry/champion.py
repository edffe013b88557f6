"""The production model as the champion: its files, its tuned parameters (the warm start of
the next study) and its scores on the current holdout next to the challenger's.

The holdout is the current test split plus the pinned evaluation set (paths.holdout: the share
of each labelled batch ingest held out of the training data, retrain.ingest.holdout), which
does not shrink as retrains accumulate. With `registry.gate.unseen_only`, rows either model
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
from retrain.config import DatasetSchema, Params
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


def pinned_holdout(params: Params) -> pd.DataFrame:
    """The pinned evaluation set (paths.holdout, retrain.ingest.holdout) cleaned as `prepare`
    cleans the raw data, with the test split's columns; empty when there is none."""
    from retrain.data.clean import clean
    from retrain.data.io import concat_tables, read_file
    from retrain.ingest.holdout import holdout_files

    files = holdout_files(params)
    if not files:
        return pd.DataFrame()
    raw = concat_tables([(f, read_file(f)) for f in files])
    frame, _ = clean(
        raw,
        params.dataset,
        params.prepare.fill_values,
        drop_duplicates=params.prepare.drop_duplicates,
        source=str(params.paths.holdout),
    )
    return frame


def pinned_version(params: Params) -> str | None:
    """The md5 that paths.holdout_pin pins (the evaluation set's version), or None."""
    from retrain.infra.dvc import read_pin

    pin = params.paths.holdout_pin
    return read_pin(pin).md5 if pin.exists() else None


def _candidates(params: Params) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The test split, then every pinned-holdout row (none of which any model trained on:
    ingest held them out of the training data), and what each part holds."""
    test = pd.read_parquet(params.paths.test)
    pinned = pinned_holdout(params)
    about: dict[str, Any] = {"test_rows": len(test)}
    if pinned.empty and not params.paths.holdout_pin.exists():
        return test, about  # no pinned evaluation set: the record reads as before
    about["pinned_version"] = pinned_version(params)
    frame = pd.concat([test, pinned[test.columns]], ignore_index=True) if len(pinned) else test
    return frame, about


def select_holdout(
    candidates: pd.DataFrame,
    n_test: int,
    schema: DatasetSchema,
    seen: list[pd.DataFrame] | None,
    own: int = 2,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows to score of `candidates` (the test split's `n_test` rows, then the pinned
    holdout's) and how many each rule left out (pure: the frames are given).

    Args:
        seen: the frames the models trained or validated on, the challenger's `own` first and
            the champion's after; None scores every candidate (`unseen_only: false`).
    """
    about: dict[str, Any] = {}
    keep = np.ones(len(candidates), dtype=bool)
    if seen is not None:
        keep, counts = unseen_rows(candidates, schema.features, seen, schema.id_column)
        about.update(counts)
        if len(seen) > own:
            by_champion, c = unseen_rows(candidates, schema.features, seen[own:], schema.id_column)
            repeated = c["excluded_repeated_in_test"]
            about["excluded_seen_by_champion"] = int((~by_champion).sum()) - repeated
    about["rows"] = int(keep.sum())
    if len(candidates) > n_test:  # the two parts the rows came from
        about["test_rows_unseen"] = int(keep[:n_test].sum())
        about["pinned_rows"] = int(keep[n_test:].sum())
    return candidates[keep].reset_index(drop=True), about


def _holdout(
    root: Path, params: Params, champion: Champion | None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The rows the gate scores both models on (the test split's, then the pinned holdout's),
    and how they were chosen."""
    paths = params.paths
    candidates, holdout = _candidates(params)
    seen = None
    if params.registry.gate.unseen_only:
        # The challenger's own train/val: a test row repeating one of them flatters it.
        seen = [pd.read_parquet(paths.train), pd.read_parquet(paths.val)]
        if champion is not None:
            try:
                seen += _seen_frames(root, params, champion)
            except ArtifactMissing as err:
                # The gate still works; the record says the champion's rows were not removed.
                holdout["unseen_only_skipped"] = str(err)
    frame, counts = select_holdout(candidates, holdout["test_rows"], params.dataset, seen)
    holdout.update(counts)
    if "pinned_version" in holdout and "pinned_rows" not in holdout:  # pinned, still empty
        holdout.update(test_rows_unseen=len(frame), pinned_rows=0)
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
