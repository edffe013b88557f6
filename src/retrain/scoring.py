"""Batch scoring with the production model: probability, label, model version and time."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from retrain.config import Params


def model_version(model: Path) -> str:
    """Content hash of the exported model: the same bytes are the same version."""
    return "md5:" + hashlib.md5(model.read_bytes()).hexdigest()[:12]


def threshold(params: Params) -> float:
    """The decision threshold the evaluate stage chose for the production model."""
    import json

    return float(json.loads(params.paths.metrics.read_text())["threshold"])


def score_frame(df: pd.DataFrame, params: Params, *, now: datetime | None = None) -> pd.DataFrame:
    """Probabilities and labels for every row, stamped with the model version and time."""
    from retrain.models.predictor import Predictor

    paths = params.paths
    predictor = Predictor(paths.preprocessor, paths.onnx_model)
    proba = predictor.predict_proba(df)
    out = pd.DataFrame({"probability": proba, "label": (proba >= threshold(params)).astype(int)})
    if params.dataset.id_column and params.dataset.id_column in df.columns:
        out.insert(0, params.dataset.id_column, df[params.dataset.id_column].to_numpy())
    out["model_version"] = model_version(paths.onnx_model)
    out["scored_at"] = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    return out
