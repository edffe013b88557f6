"""Batch scoring with the production model, and the prediction-drift check on its scores."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.config import Params
from retrain.data.io import SUFFIXES
from retrain.errors import DataError


def model_version(model: Path) -> str:
    """Content hash of the exported model: the same bytes are the same version."""
    return "md5:" + hashlib.md5(model.read_bytes()).hexdigest()[:12]


def threshold(params: Params) -> float:
    """The decision threshold the evaluate stage chose for the production model."""
    import json

    return float(json.loads(params.paths.metrics.read_text())["threshold"])


def newest_batch(landing: Path) -> Path:
    """The most recently modified CSV/Parquet file in the landing folder."""
    files = [p for p in landing.glob("*") if p.is_file() and p.suffix in SUFFIXES]
    if not files:
        raise DataError(f"{landing}: no batch to monitor (no {'/'.join(SUFFIXES)} file)")
    return max(files, key=lambda p: (p.stat().st_mtime, p.name))


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


def reference_scores(params: Params) -> np.ndarray:
    """The production model's scores on the test split (written by the evaluate stage)."""
    return pd.read_parquet(params.paths.predictions)["mlp"].to_numpy()


def score_drift(scores: np.ndarray, params: Params) -> dict[str, Any]:
    """Two-sample KS test of new scores against the reference scores."""
    from scipy.stats import ks_2samp

    ref = reference_scores(params)
    cut = threshold(params)
    test = ks_2samp(scores, ref)
    pvalue = float(test.pvalue)
    return {
        "rows": len(scores),
        "mean_score": float(np.mean(scores)),
        "reference_mean_score": float(np.mean(ref)),
        "positive_rate": float(np.mean(scores >= cut)),
        "reference_positive_rate": float(np.mean(ref >= cut)),
        "threshold": cut,
        "ks_statistic": float(test.statistic),
        "ks_pvalue": pvalue,
        "pvalue_threshold": params.monitor.score_drift_pvalue,
        "drift": pvalue < params.monitor.score_drift_pvalue,
    }
