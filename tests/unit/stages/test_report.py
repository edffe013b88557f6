"""The report stage's per-task checks on crafted explanations: the explained network must be
the served model, whatever the task."""

from __future__ import annotations

import numpy as np
import pytest

from retrain.analysis.attributions import Attributions
from retrain.config import load_params
from retrain.errors import RetrainError
from retrain.stages import report
from retrain.task import BinaryTask, MulticlassTask, RegressionTask
from tests.conftest import REPO


def _explained(logits: np.ndarray, classes: np.ndarray | None = None) -> Attributions:
    n = len(logits)
    return Attributions(["a"], np.zeros((n, 1)), logits, 0.0, np.zeros(n), classes)


def test_parity_is_checked_on_each_task_s_served_prediction():
    params = load_params(REPO / "params.yaml")
    # Binary: sigmoid of the logit against the served probability.
    report._check_parity(params, BinaryTask(["Yes"]), _explained(np.zeros(3)), np.full(3, 0.5))
    with pytest.raises(RetrainError, match="disagree"):
        report._check_parity(params, BinaryTask(["Yes"]), _explained(np.zeros(3)), np.full(3, 0.6))
    # Multiclass: the predicted class's probability, read from the served row.
    served = np.array([[0.2, 0.8], [0.9, 0.1]])
    result = _explained(np.log([0.8, 0.9]), classes=np.array([1, 0]))
    report._check_parity(params, MulticlassTask(["x", "y"]), result, served)
    with pytest.raises(RetrainError):
        report._check_parity(params, MulticlassTask(["x", "y"]), result, served[:, ::-1])
    # Regression: the value, relative to its size (float32 noise on 50,000 is not a mismatch).
    values = np.array([50_000.0, 20.0])
    report._check_parity(params, RegressionTask(), _explained(values + [1e-3, 0]), values)
    with pytest.raises(RetrainError):
        report._check_parity(params, RegressionTask(), _explained(values + [50.0, 0]), values)
