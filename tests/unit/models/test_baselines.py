"""Baselines per task (retrain.models.baselines): the prediction's shape the task promises,
the task's LightGBM objective, and a bar above the prior on a table with signal."""

from __future__ import annotations

import numpy as np
import pytest

from retrain.config import LightGBMBudget
from retrain.models import baselines
from retrain.models.metrics import score
from retrain.task import make_task

BUDGET = LightGBMBudget(n_trials=2, n_estimators=60, early_stopping_rounds=10)


def _split(x: np.ndarray, y: np.ndarray) -> tuple[tuple, tuple, tuple]:
    return (x[:600], y[:600]), (x[600:800], y[600:800]), (x[800:], y[800:])


def _multiclass() -> tuple[tuple, tuple, tuple]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1000, 4))
    logits = np.stack([x[:, 0], x[:, 1], -x[:, 0] - x[:, 1]], axis=1) * 2
    y = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in logits])
    return _split(x, y.astype(np.float32))  # labels as prepare stores them


def test_multiclass_baselines_give_every_class_probability_and_beat_the_prior():
    task = make_task("multiclass", classes=["a", "b", "c"])
    train, val, test = _multiclass()
    prior = np.bincount(train[1].astype(int), minlength=3) / len(train[1])
    bar = score("log_loss", test[1], np.tile(prior, (len(test[1]), 1)))
    linear = baselines.linear(task, train, 0)
    lgbm = baselines.tuned_lightgbm(train, val, BUDGET, 0, task)
    assert lgbm.objective_ == "multiclass"
    for model in (linear, lgbm):
        p = baselines.scores(model, test[0], task)
        assert p.shape == (len(test[1]), 3)
        assert np.allclose(p.sum(axis=1), 1.0)
        assert score("log_loss", test[1], p) < bar - 0.1


def test_a_class_missing_from_training_keeps_its_column():
    task = make_task("multiclass", classes=["a", "b", "c", "d"])  # "d" never seen
    train, _, test = _multiclass()
    p = baselines.scores(baselines.linear(task, train, 0), test[0], task)
    assert p.shape == (len(test[1]), 4) and (p[:, 3] == 0).all()


def test_regression_baselines_predict_values_better_than_the_mean():
    task = make_task("regression")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1000, 4))
    y = 30 + 10 * x[:, 0] - 5 * x[:, 1] ** 2 + rng.standard_normal(1000)
    train, val, test = _split(x, y.astype(np.float32))
    bar = score("rmse", test[1], np.full(len(test[1]), train[1].mean()))
    linear = baselines.linear(task, train, 0)
    lgbm = baselines.tuned_lightgbm(train, val, BUDGET, 0, task)
    assert lgbm.objective_ == "regression"
    assert linear.alpha_ in baselines.RIDGE_ALPHAS  # chosen by RidgeCV on train
    for model in (linear, lgbm):
        v = baselines.scores(model, test[0], task)
        assert v.shape == (len(test[1]),) and v.dtype == np.float64
        assert score("rmse", test[1], v) < 0.8 * bar


@pytest.mark.parametrize("task", [None, make_task("binary", positive_class=1)])
def test_binary_baseline_is_todays(task):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1000, 3))
    y = (x[:, 0] + rng.standard_normal(1000) > 0).astype(np.float32)
    train, val, test = _split(x, y)
    p = baselines.scores(baselines.tuned_lightgbm(train, val, BUDGET, 0, task), test[0], task)
    today = baselines.scores(baselines.tuned_lightgbm(train, val, BUDGET, 0), test[0])
    assert p.shape == (len(test[1]),) and np.array_equal(p, today)
    linear = baselines.linear(task or make_task("binary", positive_class=1), train, 0)
    assert np.array_equal(
        baselines.scores(linear, test[0]),
        baselines.scores(baselines.logistic_regression(train, 0), test[0]),
    )
