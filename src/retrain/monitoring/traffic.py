"""Drift on real traffic: the rows `retrain serve` scored, read from its predictions log.

The monitor flow calls `traffic_drift` after the landed batches: the logged inputs of rows
scored since the last check (by the version now in prod) are compared with the training
reference, and their logged scores with that version's scores on the reference, with the
same Evidently checks and gate as a batch. A small state file remembers up to when traffic
was checked, so each row is judged once.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.config import DatasetSchema, Params
from retrain.files import write_json

STATE = "traffic-state.json"


def _since(state: Path) -> datetime | None:
    if not state.exists():
        return None
    return datetime.fromisoformat(json.loads(state.read_text())["checked_until"])


def served_predictions(
    logged: pd.DataFrame, current: pd.DataFrame, predictor: Any, schema: DatasetSchema
) -> np.ndarray:
    """What the version served for the logged rows, in the task's prediction shape
    (retrain.task): a binary log's own `probability` column; for the other tasks the logged
    inputs scored again by the same version, which gives the served numbers (one ONNX thread:
    the same bits every run) whatever columns the log keeps for them."""
    if schema.task == "binary":
        return logged["probability"].to_numpy()
    return np.asarray(predictor.predict_proba(current))


def traffic_drift(
    params: Params,
    model: tuple[Path, Path] | None,
    version: str | None,
    out_dir: Path,
) -> dict[str, Any] | None:
    """Drift of the traffic logged since the last check, or None when there is too little.

    Args:
        params: paths (train split, predictions log), schema, drift and serve settings.
        model: (preprocessor, ONNX) of the version whose scores are compared; default the
            workspace model.
        version: only rows scored by this registry version count (None: every row).
        out_dir: where drift.json and drift.html go (the state file sits beside them).
    """
    from retrain.data.clean import TARGET
    from retrain.monitoring.drift import compute_drift, judged, scorer
    from retrain.serve.log import read_log

    schema = params.dataset
    state = out_dir.parent / STATE
    since = _since(state)
    logged = read_log(params.paths.predictions_log, since)
    if version is not None and len(logged):
        logged = logged[logged["model_version"] == version]
    if len(logged) < params.serve.monitor_min_rows:
        return None
    current = logged[schema.features].copy()
    for col, value in params.prepare.fill_values.items():  # as `clean` fills the reference
        if col in current.columns:
            current[col] = current[col].fillna(value)
    for col in schema.numeric:
        current[col] = pd.to_numeric(current[col], errors="coerce").astype("float64")
    reference = pd.read_parquet(params.paths.train).drop(columns=[TARGET])
    predictor = scorer(params, model)
    report = compute_drift(
        reference,
        current,
        schema,
        params.drift,
        reference_scores=predictor.predict_proba(reference),
        current_scores=served_predictions(logged, current, predictor, schema),
        html=out_dir / "drift.html",
    )
    until = logged["scored_at"].max()
    summary = {
        "batch": f"traffic until {until.isoformat()}",
        "source": str(params.paths.predictions_log),
        "rows": len(logged),
        "from": logged["scored_at"].min().isoformat(),
        "until": until.isoformat(),
        "model": version or "workspace",
        **judged(report, params.drift),
    }
    write_json(out_dir / "drift.json", summary)
    write_json(state, {"checked_until": until.isoformat()})
    return summary
