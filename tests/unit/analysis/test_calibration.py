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


def _multiclass(seed: int, n: int = 8000) -> tuple[np.ndarray, np.ndarray]:
    """Classes drawn from softmax(z): z / 1 are calibrated log-probabilities."""
    from scipy.special import softmax

    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.0, (n, 4))
    y = np.array([rng.choice(4, p=row) for row in softmax(z, axis=1)])
    return y, z


def test_multiclass_overconfident_probabilities_get_one_temperature_back():
    from scipy.special import softmax

    from retrain.analysis.calibration import scale_any, top_class_ece

    y, z = _multiclass(2)
    sharp = softmax(2.5 * z, axis=1)
    fit = fit_temperature(y, sharp, min_gain=0.0005)
    assert fit.temperature == pytest.approx(2.5, rel=0.08) and fit.applied
    assert fit.val_log_loss_after < fit.val_log_loss_before - 0.05
    scaled = scale_any(sharp, fit.temperature)
    assert np.allclose(scaled.sum(axis=1), 1.0)
    assert (scaled.argmax(axis=1) == sharp.argmax(axis=1)).all()  # same predicted class
    assert top_class_ece(y, scaled, 10) < top_class_ece(y, sharp, 10) - 0.05


def test_multiclass_calibrated_probabilities_are_left_alone():
    from scipy.special import softmax

    y, z = _multiclass(3)
    fit = fit_temperature(y, softmax(z, axis=1), min_gain=0.0005)
    assert fit.temperature == pytest.approx(1.0, abs=0.08) and not fit.applied
    off = no_scaling(y, softmax(z, axis=1), min_gain=0.0005)
    assert off.val_log_loss_before == pytest.approx(fit.val_log_loss_before, abs=1e-6)


def test_top_class_ece_reads_the_most_probable_class():
    from retrain.analysis.calibration import top_class, top_class_ece

    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1]])
    y = np.array([0, 0, 2, 0])
    correct, confidence = top_class(y, p)
    assert correct.tolist() == [1, 0, 1, 1] and confidence.tolist() == [0.7, 0.8, 0.4, 0.6]
    # One bin: |mean confidence 0.625 - accuracy 0.75|.
    assert top_class_ece(y, p, 1) == pytest.approx(0.125)


def test_coverage_counts_the_rows_inside_prediction_plus_minus_half_width():
    from retrain.analysis.calibration import ConformalInterval, coverage, coverage_report

    y = np.array([10.0, 12.0, 7.0, 20.0])
    prediction = np.array([11.0, 10.0, 10.0, 10.0])
    # |residuals| 1, 2, 3, 10: inside a half-width of 2 (bounds included): 2 of 4.
    assert coverage(y, prediction, 2.0) == 0.5
    assert coverage(y, prediction, 3.0) == 0.75
    assert coverage(np.empty(0), np.empty(0), 1.0) is None
    report = coverage_report(y, prediction, ConformalInterval(0.9, 3.0, 100), 0.02)
    assert report["coverage"] == 0.75 and report["miss"] == 0.15 and not report["within"]


def test_an_interval_file_is_read_or_refused_naming_it(tmp_path):
    import json

    from retrain.analysis.calibration import ConformalInterval
    from retrain.errors import RetrainError

    path = tmp_path / "intervals.json"
    with pytest.raises(RetrainError, match="intervals.json: not found"):
        ConformalInterval.load(path)
    path.write_text(json.dumps({"level": 0.9, "half_width": 12.5, "n_val": 450}))
    assert ConformalInterval.load(path) == ConformalInterval(0.9, 12.5, 450)
    path.write_text(json.dumps({"level": 0.9}))
    with pytest.raises(RetrainError, match="intervals.json: not an interval file"):
        ConformalInterval.load(path)
