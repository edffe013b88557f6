"""The paired bootstrap's weighted metrics are the report's metrics with row weights."""

from __future__ import annotations

import numpy as np
import pytest

from retrain.models.metrics import THRESHOLD_FREE, score
from retrain.registry import evidence


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("metric", THRESHOLD_FREE)
def test_weights_are_repeated_rows(metric, ties):
    rng = np.random.default_rng(0)
    n = 1500
    y = (rng.uniform(size=n) < 0.3).astype(int)
    p = rng.uniform(size=n)
    if ties:
        p = np.round(p, 1)  # many equal scores: ties count half, as sklearn counts them
    counts = rng.integers(0, 3, size=n)
    rows = np.repeat(np.arange(n), counts)
    w = np.stack([np.ones(n), counts], axis=1).astype(float)
    got = evidence.weighted(metric, y, p, w)
    assert got[0] == pytest.approx(score(metric, y, p), abs=1e-6)
    assert got[1] == pytest.approx(score(metric, y[rows], p[rows]), abs=1e-6)


def test_blocks_do_not_change_the_interval(monkeypatch):
    rng = np.random.default_rng(1)
    q = rng.uniform(size=800)
    y = (rng.uniform(size=800) < q).astype(int)
    other = np.clip(q + rng.normal(0, 0.1, 800), 0, 1)
    args = ("roc_auc", y, q, other)
    whole = evidence.paired_interval(*args, confidence=0.9, resamples=300, seed=5)
    monkeypatch.setattr(evidence, "BLOCK", 800 * 7)  # 7 resamples a block
    assert evidence.paired_interval(*args, confidence=0.9, resamples=300, seed=5) == whole
    assert whole.low < whole.high and whole.resamples == 300


def _multiclass(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.special import softmax

    rng = np.random.default_rng(seed)
    p = softmax(rng.normal(0, 1.2, (n, 4)), axis=1)
    y = np.array([rng.choice(4, p=row) for row in p])
    return y, p


def _sklearn(metric: str, y: np.ndarray, p: np.ndarray) -> float:
    from sklearn import metrics as skm

    if metric == "log_loss":
        return float(skm.log_loss(y, y_proba=p, labels=[0, 1, 2, 3]))
    if metric == "brier":
        return float(skm.brier_score_loss(y, y_proba=p, labels=[0, 1, 2, 3]))
    if metric == "roc_auc_ovr":
        return float(skm.roc_auc_score(y, p, multi_class="ovr", average="macro"))
    return {
        "rmse": lambda: float(np.sqrt(skm.mean_squared_error(y, p))),
        "mae": lambda: float(skm.mean_absolute_error(y, p)),
        "r2": lambda: float(skm.r2_score(y, p)),
    }[metric]()


@pytest.mark.parametrize("metric", ["log_loss", "brier", "roc_auc_ovr"])
def test_multiclass_weights_are_repeated_rows_whole(metric):
    # A multiclass row is resampled with its whole row of probabilities: weighting it by k is
    # the same as repeating it k times, and unit weights are sklearn's number.
    y, p = _multiclass(900, 3)
    counts = np.random.default_rng(4).integers(0, 3, size=len(y))
    rows = np.repeat(np.arange(len(y)), counts)
    w = np.stack([np.ones(len(y)), counts], axis=1).astype(float)
    got = evidence.weighted(metric, y, p, w)
    assert got[0] == pytest.approx(_sklearn(metric, y, p), abs=1e-9)
    assert got[1] == pytest.approx(_sklearn(metric, y[rows], p[rows]), abs=1e-9)
    assert evidence.point(metric, y, p) == pytest.approx(got[0], abs=1e-6)


@pytest.mark.parametrize("metric", ["rmse", "mae", "r2"])
def test_regression_weights_are_repeated_rows(metric):
    rng = np.random.default_rng(5)
    y = rng.normal(100, 20, 700)
    p = y + rng.normal(0, 10, 700)
    counts = rng.integers(0, 3, size=700)
    rows = np.repeat(np.arange(700), counts)
    w = np.stack([np.ones(700), counts], axis=1).astype(float)
    got = evidence.weighted(metric, y, p, w)
    assert got[0] == pytest.approx(_sklearn(metric, y, p), abs=1e-9)
    assert got[1] == pytest.approx(_sklearn(metric, y[rows], p[rows]), abs=1e-9)


def test_undefined_task_metrics_are_none_and_their_resamples_are_dropped():
    y, p = _multiclass(200, 6)
    y = np.where(y == 3, 0, y)  # class 3 never occurs: its one-vs-rest AUC is undefined
    assert evidence.point("roc_auc_ovr", y, p) is None
    assert evidence.point("r2", np.full(5, 2.0), np.arange(5.0)) is None
    iv = evidence.paired_interval(
        "roc_auc_ovr", y, p, p[::-1], confidence=0.9, resamples=100, seed=0
    )
    assert iv.resamples == 0


def test_the_multiclass_interval_is_in_the_gain_s_direction():
    # log loss: lower is better; a better challenger's gain interval is positive.
    y, p = _multiclass(1000, 7)
    worse = 0.5 * p + 0.125
    iv = evidence.paired_interval("log_loss", y, p, worse, confidence=0.9, resamples=300, seed=1)
    assert 0 < iv.low < iv.high and iv.resamples == 300
