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
