"""Temperature scaling, fitted on the validation split only.

One parameter T divides the model's logit: ``p' = sigmoid(logit(p) / T)``. It is monotone, so
ranking metrics (ROC AUC, PR AUC) do not change, and a threshold t maps to
``sigmoid(logit(t) / T)`` with the same decisions. The exported ONNX model is never changed:
whoever wants calibrated scores applies T, which the report and model card record.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, logit
from sklearn.metrics import log_loss

EPS = 1e-7  # the same clipping as retrain.models.metrics.classification_metrics
T_BOUNDS = (0.05, 20.0)


def to_logits(p: np.ndarray) -> np.ndarray:
    return np.asarray(logit(np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)))


def scale(p: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities after dividing their logits by `temperature`."""
    return np.asarray(expit(to_logits(p) / temperature))


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return float(log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0, 1]))


@dataclass(frozen=True)
class TemperatureFit:
    """The fitted temperature and whether it earned its place on validation."""

    temperature: float
    applied: bool
    val_log_loss_before: float
    val_log_loss_after: float
    min_log_loss_gain: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_temperature(y_val: np.ndarray, p_val: np.ndarray, *, min_gain: float) -> TemperatureFit:
    """The T minimising validation log loss; applied only if it gains at least `min_gain`.

    Args:
        y_val: 0/1 targets of the validation split.
        p_val: the model's probabilities on the validation split.
        min_gain: the least drop in validation log loss that justifies scaling.
    """
    z = to_logits(p_val)

    def loss(log_t: float) -> float:
        return _log_loss(y_val, expit(z / math.exp(log_t)))

    found = minimize_scalar(
        loss, bounds=(math.log(T_BOUNDS[0]), math.log(T_BOUNDS[1])), method="bounded"
    )
    # Rounded first, so the recorded T reproduces the reported numbers exactly.
    temperature = round(math.exp(float(found.x)), 6)
    before = _log_loss(y_val, np.asarray(p_val, dtype=np.float64))
    after = _log_loss(y_val, scale(p_val, temperature))
    return TemperatureFit(
        temperature=temperature,
        applied=before - after >= min_gain,
        val_log_loss_before=round(before, 6),
        val_log_loss_after=round(after, 6),
        min_log_loss_gain=min_gain,
    )


def no_scaling(y_val: np.ndarray, p_val: np.ndarray, *, min_gain: float) -> TemperatureFit:
    """What the report records when temperature scaling is turned off: T = 1, not applied."""
    loss = round(_log_loss(y_val, np.asarray(p_val, dtype=np.float64)), 6)
    return TemperatureFit(1.0, False, loss, loss, min_gain)
