"""Batch scoring with the production model: probability, label, model version and time."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from retrain.config import Params

if TYPE_CHECKING:
    from retrain.registry.serving import ServedModel


def model_version(model: Path) -> str:
    """Content hash of the exported model: the same bytes are the same version."""
    return "md5:" + hashlib.md5(model.read_bytes()).hexdigest()[:12]


def threshold(params: Params) -> float:
    """The decision threshold the evaluate stage chose for the workspace model."""
    import json

    return float(json.loads(params.paths.metrics.read_text())["threshold"])


def model_input(df: pd.DataFrame, params: Params) -> pd.DataFrame:
    """The raw rows as the model saw them in training: prepare.fill_values filled.

    `clean` fills these documented gaps before the preprocessor is fitted (Telco: a blank
    total_charges is 0 for a new customer); scoring must fill them the same way, not with
    the preprocessor's median.
    """
    fills = {c: v for c, v in params.prepare.fill_values.items() if c in df.columns}
    if not fills or not any(df[c].isna().any() for c in fills):
        return df
    return df.fillna(fills)


def decide(proba: np.ndarray, cut: float) -> np.ndarray:
    """0/1 labels: positive when the probability reaches the model's threshold."""
    return (proba >= cut).astype(int)


def score_frame(
    df: pd.DataFrame,
    params: Params,
    model: ServedModel | None = None,
    *,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Probabilities and labels for every row, stamped with the model version and time.

    Args:
        df: the raw table (validated).
        params: dataset schema and, without `model`, the workspace model's paths.
        model: a registered version (the predict flow passes the prod one); None scores
            with the workspace model, for which `registry_version` is empty.
        now: the scoring time to stamp (default: the current UTC time).
    """
    from retrain.models.predictor import Predictor

    if model is None:
        onnx, pre, cut, label = (
            params.paths.onnx_model,
            params.paths.preprocessor,
            threshold(params),
            "",
        )
    else:
        onnx, pre, cut, label = model.onnx, model.preprocessor, model.threshold, model.label
    proba = Predictor(pre, onnx).predict_proba(model_input(df, params))
    out = pd.DataFrame({"probability": proba, "label": decide(proba, cut)})
    if params.dataset.id_column and params.dataset.id_column in df.columns:
        out.insert(0, params.dataset.id_column, df[params.dataset.id_column].to_numpy())
    out["model_version"] = model_version(onnx)
    out["registry_version"] = label
    out["scored_at"] = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    return out
