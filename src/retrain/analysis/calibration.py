"""Calibration per task: temperature scaling fitted on validation, and the regression interval's
coverage.

Binary: one parameter T divides the model's logit: ``p' = sigmoid(logit(p) / T)``. It is
monotone, so ranking metrics (ROC AUC, PR AUC) do not change, and a threshold t maps to
``sigmoid(logit(t) / T)`` with the same decisions. Multiclass: the same T divides every
log-probability, ``p' = softmax(log(p) / T)``: each row's order of classes (its predicted
class) is kept, and the ECE is measured on the top class (confidence = the largest
probability, correct = it is the row's class). The exported ONNX model is never changed:
whoever wants calibrated scores applies T, which the report and model card record.

Regression has no ECE: `train` fits a split-conformal interval on validation (paths.intervals:
prediction +- half_width at `level`), and its *coverage* (the share of rows whose value lies
inside) on test is what is reported and gated.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_softmax, logit
from sklearn.metrics import log_loss

from retrain.errors import RetrainError

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


def _scaled(p: np.ndarray, temperature: float) -> np.ndarray:
    """Binary or multiclass probabilities after temperature scaling (see the docstring)."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 2:
        return np.exp(log_softmax(np.log(np.clip(p, EPS, 1.0)) / temperature, axis=1))
    return scale(p, temperature)


def _loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 2:  # the multiclass log loss of retrain.registry.evidence (the gate's)
        q = np.clip(p[np.arange(len(y)), np.asarray(y, dtype=np.int64)], EPS, 1 - EPS)
        return float(-np.log(q).mean())
    return _log_loss(y, p)


def fit_temperature(y_val: np.ndarray, p_val: np.ndarray, *, min_gain: float) -> TemperatureFit:
    """The T minimising validation log loss; applied only if it gains at least `min_gain`.

    Args:
        y_val: 0/1 targets (binary) or class indices (multiclass) of the validation split.
        p_val: the model's prediction on the validation split: P(positive), or (rows x
            classes) probabilities.
        min_gain: the least drop in validation log loss that justifies scaling.
    """
    p_val = np.asarray(p_val, dtype=np.float64)
    if p_val.ndim == 2:
        # Multiclass: the clipped log-probabilities play the logit's part.
        z = np.log(np.clip(p_val, EPS, 1.0))

        def loss(log_t: float) -> float:
            return _loss(y_val, np.exp(log_softmax(z / math.exp(log_t), axis=1)))
    else:
        z = to_logits(p_val)

        def loss(log_t: float) -> float:
            return _log_loss(y_val, expit(z / math.exp(log_t)))

    found = minimize_scalar(
        loss, bounds=(math.log(T_BOUNDS[0]), math.log(T_BOUNDS[1])), method="bounded"
    )
    # Rounded first, so the recorded T reproduces the reported numbers exactly.
    temperature = round(math.exp(float(found.x)), 6)
    before = _loss(y_val, p_val)
    after = _loss(y_val, _scaled(p_val, temperature))
    return TemperatureFit(
        temperature=temperature,
        applied=before - after >= min_gain,
        val_log_loss_before=round(before, 6),
        val_log_loss_after=round(after, 6),
        min_log_loss_gain=min_gain,
    )


def no_scaling(y_val: np.ndarray, p_val: np.ndarray, *, min_gain: float) -> TemperatureFit:
    """What the report records when temperature scaling is turned off: T = 1, not applied."""
    loss = round(_loss(y_val, p_val), 6)
    return TemperatureFit(1.0, False, loss, loss, min_gain)


def scale_any(p: np.ndarray, temperature: float) -> np.ndarray:
    """`scale` for a binary prediction, the softmax of log(p) / T for a multiclass one."""
    return _scaled(p, temperature)


def top_class(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A multiclass prediction as a binary one: whether each row's predicted (top) class is
    right (0/1), and the probability it was given: what the top-class ECE and reliability
    curve read."""
    p = np.asarray(p, dtype=np.float64)
    correct = (p.argmax(axis=1) == np.asarray(y, dtype=np.int64)).astype(int)
    return correct, p.max(axis=1)


def top_class_ece(y: np.ndarray, p: np.ndarray, bins: int) -> float:
    """The expected calibration error of a multiclass prediction on its top class."""
    from retrain.models.metrics import expected_calibration_error

    correct, confidence = top_class(y, p)
    return expected_calibration_error(correct, confidence, bins)


@dataclass(frozen=True)
class ConformalInterval:
    """The regression model's interval (paths.intervals, written by `train`): prediction +-
    half_width covers `level` of new rows, fitted on `n_val` validation residuals."""

    level: float
    half_width: float
    n_val: int

    @classmethod
    def load(cls, path: Path) -> ConformalInterval:
        """Raises: RetrainError naming the file when it is missing or not an interval."""
        if not path.exists():
            raise RetrainError(f"{path}: not found; `train` writes it for a regression model")
        try:
            data = json.loads(path.read_text())
            return cls(float(data["level"]), float(data["half_width"]), int(data["n_val"]))
        except (KeyError, TypeError, ValueError) as err:  # JSONDecodeError is a ValueError
            raise RetrainError(
                f"{path}: not an interval file ({{level, half_width, n_val}}): {err}"
            ) from None


def coverage(y: np.ndarray, prediction: np.ndarray, half_width: float) -> float | None:
    """The share of rows whose value lies inside prediction +- half_width (bounds included),
    rounded to 6 digits; None with no rows."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) == 0:
        return None
    inside = np.abs(y - np.asarray(prediction, dtype=np.float64)) <= half_width
    return round(float(inside.mean()), 6)


def coverage_report(
    y: np.ndarray,
    prediction: np.ndarray,
    interval: ConformalInterval,
    tolerance: float | None = None,
) -> dict[str, Any]:
    """What metrics/calibration.json says of a regression interval on test: its coverage and
    how far that misses the level (and, given the gate's `tolerance`, whether within it)."""
    covered = coverage(y, prediction, interval.half_width)
    miss = None if covered is None else round(abs(covered - interval.level), 6)
    out: dict[str, Any] = {
        "level": interval.level,
        "half_width": interval.half_width,
        "n_val": interval.n_val,
        "coverage": covered,
        "rows": len(y),
        "miss": miss,
    }
    if tolerance is not None:
        out |= {"tolerance": tolerance, "within": miss is not None and miss <= tolerance}
    return out
