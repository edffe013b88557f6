"""How sure the gate is: a paired bootstrap of challenger - champion over the holdout's rows.

Each resample draws n rows with replacement, the same rows for both models (paired: what the
two models share cancels, so the interval is far narrower than either model's own), and
scores both on them; the interval is the percentile interval of the differences. A resample
is a vector of row counts (weights), so one sort of each model's scores serves every
resample: each metric is a few numpy operations on a (rows x resamples) matrix, no Python
loop over resamples. The generator is seeded from params.yaml's `seed`: a replay draws the
same resamples and gets the same interval, bit for bit.

The weighted metrics below are `retrain.models.metrics`' definitions (sklearn's) with row
weights; at unit weights they give the same numbers (tests/unit/registry/test_evidence.py).
Every task's threshold-free metrics are here, on the prediction shapes of `retrain.task`: a
binary or regression prediction is a vector, a multiclass one a (rows x classes) matrix whose
rows are resampled whole (a row's probabilities stay together). `point` is the same
definition at unit weights: what the gate reports for a multiclass or regression model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from retrain.task import HIGHER_IS_BETTER

# Elements of one (rows x resamples) block: bounds memory on a large holdout (150k rows:
# 13 resamples a block, ~16 MB a matrix) without changing any number.
BLOCK = 2_000_000
_EPS = 1e-7  # the clipping of retrain.models.metrics' log loss


@dataclass(frozen=True)
class Interval:
    """The paired difference's percentile interval, in the gain's direction (positive: the
    challenger is better, whatever the metric's direction)."""

    low: float
    high: float
    confidence: float
    resamples: int  # resamples with both classes (the others have no ranking metric)


def _levels(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ascending sort order of `p`, and where each run of equal scores starts in it."""
    order = np.argsort(p, kind="stable")
    ps = p[order]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
    return order, starts


def _class_weights(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative weight at each distinct score, ascending: (levels x resamples)."""
    order, starts = _levels(p)
    ws = w[order]
    pos = ws * y[order, None]
    neg = ws - pos
    if len(starts) == len(p):  # no ties: each row is its own level
        return pos, neg
    return np.add.reduceat(pos, starts, axis=0), np.add.reduceat(neg, starts, axis=0)


def _roc_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    pos, neg = _class_weights(y, p, w)
    below = np.cumsum(neg, axis=0) - neg  # negatives scored lower; ties count half
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos * (below + 0.5 * neg)).sum(0) / (pos.sum(0) * neg.sum(0))


def _pr_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Average precision: the precision at each threshold, weighted by the recall it adds."""
    pos, neg = _class_weights(y, p, w)
    pos, neg = pos[::-1], neg[::-1]  # from the highest score down
    tp, fp = np.cumsum(pos, axis=0), np.cumsum(neg, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        return (pos * precision).sum(0) / pos.sum(0)


def _log_loss(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1 - _EPS)
    loss = -(y * np.log(q) + (1 - y) * np.log(1 - q))
    return (loss @ w) / w.sum(0)


def _brier(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    return ((p - y) ** 2 @ w) / w.sum(0)


def _mc_log_loss(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    # The binary log loss's clipping, on the probability of each row's own class.
    q = np.clip(p[np.arange(len(y)), y], _EPS, 1 - _EPS)
    return (-np.log(q) @ w) / w.sum(0)


def _one_hot(y: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes)[y]


def _mc_brier(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    # sklearn's multiclass Brier score: the squared distance to the one-hot row, not halved.
    return (((p - _one_hot(y, p.shape[1])) ** 2).sum(1) @ w) / w.sum(0)


def _roc_auc_ovr(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Macro one-vs-rest ROC AUC: the mean of each class's AUC against the others (sklearn's
    `multi_class="ovr", average="macro"`); NaN when a resample misses a class."""
    per_class = [_roc_auc((y == c).astype(np.float64), p[:, c], w) for c in range(p.shape[1])]
    return np.mean(per_class, axis=0)


def _mse(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    return ((p - y) ** 2 @ w) / w.sum(0)


def _rmse(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.sqrt(_mse(y, p, w))


def _mae(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (np.abs(p - y) @ w) / w.sum(0)


def _r2(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    mean = (y @ w) / w.sum(0)
    total = (((y[:, None] - mean) ** 2) * w).sum(0) / w.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1 - _mse(y, p, w) / total  # NaN (or -inf) on a resample of one value


Weighted = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
WEIGHTED: dict[str, Weighted] = {
    "roc_auc": _roc_auc,
    "pr_auc": _pr_auc,
    "log_loss": _log_loss,
    "brier": _brier,
    "rmse": _rmse,
    "mae": _mae,
    "r2": _r2,
}
# A multiclass prediction (rows x classes) under the same names.
WEIGHTED_MULTICLASS: dict[str, Weighted] = {
    "log_loss": _mc_log_loss,
    "brier": _mc_brier,
    "roc_auc_ovr": _roc_auc_ovr,
}


def weighted(metric: str, y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`metric` of predictions `p` for targets `y` under each column of weights `w` (rows x
    resamples); NaN where a metric is undefined (a resample of one class).

    `p` of two dimensions is a multiclass prediction and `y` the class indices; otherwise
    `y` is 0/1 (binary) or the value (regression).
    """
    p = np.asarray(p, np.float64)
    if p.ndim == 2:
        if metric not in WEIGHTED_MULTICLASS:
            raise ValueError(
                f"{metric!r} is not a multiclass metric: {sorted(WEIGHTED_MULTICLASS)}"
            )
        return WEIGHTED_MULTICLASS[metric](np.asarray(y).astype(np.int64), p, w)
    return WEIGHTED[metric](np.asarray(y, dtype=np.float64), p, w)


def point(metric: str, y: np.ndarray, p: np.ndarray) -> float | None:
    """`metric` of `p` for `y` on all rows once (unit weights), rounded to 6 digits; None where
    it is undefined (no rows, a class missing for a ranking metric, a constant target)."""
    if len(y) == 0:
        return None
    value = float(weighted(metric, y, p, np.ones((len(y), 1)))[0])
    return round(value, 6) if np.isfinite(value) else None


def _counts(rng: np.random.Generator, n: int, resamples: int) -> np.ndarray:
    """`resamples` bootstrap draws of n rows as row counts: (n x resamples), rows first so
    that a sort of the rows moves contiguous memory."""
    picks = rng.integers(0, n, size=(resamples, n))
    flat = (picks * resamples + np.arange(resamples)[:, None]).ravel()
    return np.bincount(flat, minlength=n * resamples).reshape(n, resamples).astype(np.float64)


def paired_differences(
    metric: str,
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    *,
    resamples: int,
    seed: int,
) -> np.ndarray:
    """The gain (challenger over champion, in the metric's better direction) on each of
    `resamples` paired bootstrap resamples of the rows, drawn from `seed`."""
    n = len(y)
    rng = np.random.default_rng(seed)
    block = max(1, min(resamples, BLOCK // max(n, 1)))
    out = []
    for done in range(0, resamples, block):
        w = _counts(rng, n, min(block, resamples - done))
        out.append(weighted(metric, y, challenger, w) - weighted(metric, y, champion, w))
    diff = np.concatenate(out)
    return diff if HIGHER_IS_BETTER[metric] else -diff


def paired_interval(
    metric: str,
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    *,
    confidence: float,
    resamples: int,
    seed: int,
) -> Interval:
    """The two-sided percentile interval at `confidence` of the paired gain."""
    diff = paired_differences(metric, y, challenger, champion, resamples=resamples, seed=seed)
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        return Interval(float("nan"), float("nan"), confidence, 0)
    tail = (1 - confidence) / 2
    low, high = np.quantile(diff, [tail, 1 - tail])
    return Interval(round(float(low), 6), round(float(high), 6), confidence, int(diff.size))
