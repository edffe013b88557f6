"""A regression model's prediction interval: split-conformal on the validation residuals.

The interval is prediction +- half_width, half_width the ceil((n + 1) * level)-th smallest of
the n absolute validation residuals (Vovk et al.; Lei et al., "Distribution-Free Predictive
Inference for Regression", 2018): for a new row exchangeable with the validation rows it
covers the truth with probability at least `level`. The residuals are those of the exported
ONNX model, the one that is served. Written beside model.onnx (paths.intervals) and served
with it; a classifier's file says so with nulls, so every model directory has the same files.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def conformal_half_width(residuals: np.ndarray, level: float) -> float:
    """The split-conformal half width at `level` for these validation residuals.

    With fewer than 1 / (1 - level) - 1 residuals the rank ceil((n + 1) * level) exceeds n
    and the guarantee needs an infinite interval; the largest residual is used then (the
    guarantee is weaker, as `n_val` in the file shows).

    Raises:
        ValueError: no residuals, or a level outside (0, 1).
    """
    if not 0 < level < 1:
        raise ValueError(f"interval level {level} is not between 0 and 1")
    errors = np.sort(np.abs(np.asarray(residuals, dtype=np.float64)))
    n = len(errors)
    if n == 0:
        raise ValueError("no validation residuals to calibrate the interval on")
    rank = min(math.ceil((n + 1) * level), n)
    return float(errors[rank - 1])


def intervals_record(
    level: float | None, y_val: np.ndarray, predicted: np.ndarray | None
) -> dict[str, Any]:
    """What paths.intervals holds: {"level", "half_width", "n_val"}; `predicted` None (a
    classifier): level and half_width null."""
    if predicted is None or level is None:
        return {"level": None, "half_width": None, "n_val": len(y_val)}
    residuals = np.asarray(y_val, dtype=np.float64) - np.asarray(predicted, dtype=np.float64)
    return {
        "level": level,
        "half_width": conformal_half_width(residuals, level),
        "n_val": len(y_val),
    }
