"""The folds a tuning trial is scored on: every row of train+validation held out exactly once,
stratified on the task's strata, the same for the same seed, refused when a class is rarer
than the folds."""

from __future__ import annotations

import numpy as np
import pytest

from retrain.task import make_task
from retrain.tuning.folds import FoldError, cv_folds, pool


def _rows(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(len(y), dtype=np.float32).reshape(-1, 1), y  # column 0: the row's number


@pytest.mark.parametrize(
    ("kind", "y"),
    [
        ("binary", (np.arange(300) % 5 == 0).astype(int)),  # 20% positive
        ("multiclass", np.arange(300) % 3),
        ("regression", np.random.default_rng(0).lognormal(size=300)),
    ],
)
def test_every_row_is_held_out_once_and_the_folds_keep_the_strata(kind, y):
    task = make_task(kind, positive_class=1, classes=[0, 1, 2])
    folds = cv_folds(_rows(y), 3, seed=42, task=task)
    held = np.concatenate([held_out[0][:, 0] for _, held_out in folds])
    assert sorted(held.astype(int)) == list(range(300))
    for fitted, held_out in folds:
        assert not set(fitted[0][:, 0]) & set(held_out[0][:, 0])
        strata = task.strata(y)
        fold_strata = strata[held_out[0][:, 0].astype(int)]  # the pool's strata of its rows
        for value in np.unique(strata):  # each stratum's share, to within one row per fold
            share = np.mean(strata == value)
            assert abs(np.mean(fold_strata == value) - share) <= 1.5 / len(held_out[1])
    again = cv_folds(_rows(y), 3, seed=42, task=task)
    assert all(np.array_equal(a[1][0], b[1][0]) for a, b in zip(folds, again, strict=True))
    other = cv_folds(_rows(y), 3, seed=7, task=task)
    assert not np.array_equal(folds[0][1][0], other[0][1][0])


def test_the_pool_is_train_then_validation_and_a_rare_class_is_refused():
    train, val = _rows(np.array([0, 1] * 10)), _rows(np.array([0, 0, 1, 2]))
    x, y = pool(train, val)
    assert len(y) == 24 and list(y[-4:]) == [0, 0, 1, 2]
    with pytest.raises(
        FoldError, match=r"^tune.folds 3: class 'c' has 1 rows in train\+validation"
    ):
        cv_folds((x, y), 3, seed=0, task=make_task("multiclass", classes=["a", "b", "c"]))
