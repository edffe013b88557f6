"""Temperature scaling: fitted on validation, applied only when it helps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from retrain.analysis.calibration import fit_temperature, no_scaling, scale


def _data(seed: int, n: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, n)
    return (rng.uniform(size=n) < expit(z)).astype(int), z


def test_overconfident_scores_get_their_temperature_back_and_it_is_applied():
    y, z = _data(0)
    fit = fit_temperature(y, expit(3 * z), min_gain=0.0005)
    assert fit.temperature == pytest.approx(3.0, rel=0.05)
    assert fit.applied
    assert fit.val_log_loss_after < fit.val_log_loss_before - 0.01


def test_calibrated_scores_are_left_alone():
    y, z = _data(1)
    fit = fit_temperature(y, expit(z), min_gain=0.0005)
    assert fit.temperature == pytest.approx(1.0, abs=0.05)
    assert not fit.applied
    off = no_scaling(y, expit(z), min_gain=0.0005)
    assert (off.temperature, off.applied) == (1.0, False)


def test_scaling_keeps_order_and_decisions():
    p = np.linspace(0.01, 0.99, 99)
    scaled = scale(p, 2.0)
    assert (np.diff(scaled) > 0).all()
    threshold = 0.3
    assert ((p >= threshold) == (scaled >= scale(np.array([threshold]), 2.0)[0])).all()
