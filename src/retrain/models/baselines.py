"""Baselines fitted on the same split in the same run: the bar our model must clear.

Per task (retrain.task): a linear model (logistic regression; multinomial logistic regression;
ridge regression with its alpha chosen by RidgeCV on the training split) and LightGBM with the
task's objective, tuned on validation. `scores` returns a prediction of the shape the task
promises, like `Predictor.predict_matrix`, so every metric reads both the same way.

Both read the network's design matrix: a high-cardinality column (`dataset.high_cardinality`)
as the same target + frequency columns, out of fold on the training rows (retrain.data.encoding),
so the bar is cleared on the same information.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from retrain.config import LightGBMBudget
from retrain.task import BinaryTask, MulticlassTask, RegressionTask, Task

Matrix = tuple[np.ndarray, np.ndarray]
# Ridge's alphas, searched by RidgeCV's leave-one-out error on the training split: the
# features are standardised/embedded by the preprocessor, so one log grid fits any table.
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 13))


def logistic_regression(train: Matrix, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=5000, random_state=seed)
    model.fit(*train)
    return model


def linear(task: Task, train: Matrix, seed: int) -> Any:
    """The task's linear baseline: logistic (binary: exactly `logistic_regression`),
    multinomial logistic (lbfgs' default for more than two classes) or RidgeCV."""
    if isinstance(task, BinaryTask):
        return logistic_regression(train, seed)
    if isinstance(task, MulticlassTask):
        return logistic_regression((train[0], train[1].astype(int)), seed)
    from sklearn.linear_model import RidgeCV

    return RidgeCV(alphas=RIDGE_ALPHAS).fit(*train)


@dataclass(frozen=True)
class _Search:
    """What LightGBM's search differs in per task: estimator, early-stopping metric, how a
    trial is scored on validation (unrounded) and in which direction."""

    regressor: bool
    eval_metric: str
    direction: Literal["maximize", "minimize"]
    trial_score: Callable[[np.ndarray, np.ndarray], float]


def _search(task: Task) -> _Search:
    from sklearn import metrics as skm

    if isinstance(task, MulticlassTask):
        labels = list(range(task.n_outputs))
        return _Search(
            False,
            "multi_logloss",
            "minimize",
            lambda y, p: float(skm.log_loss(y, np.clip(p, 1e-7, 1), labels=labels)),
        )
    if isinstance(task, RegressionTask):
        return _Search(
            True, "rmse", "minimize", lambda y, v: float(np.sqrt(skm.mean_squared_error(y, v)))
        )
    return _Search(False, "auc", "maximize", lambda y, p: float(skm.roc_auc_score(y, p)))


def tuned_lightgbm(
    train: Matrix, val: Matrix, budget: LightGBMBudget, seed: int, task: Task | None = None
) -> Any:
    """LightGBM tuned by a seeded TPE study on validation, with early stopping.

    Scored per task (`task` None: binary): ROC AUC (binary), log loss (multiclass, objective
    multiclass with num_class from the labels), RMSE (regression, objective L2). A
    default-parameter booster is a weak bar; this gets a small search of its own. The trials
    see at most `budget.max_rows` rows of each split; the final booster sees all.
    """
    import lightgbm as lgb
    import optuna

    from retrain.data.splits import sample_rows

    task = task or BinaryTask(["positive"])
    search = _search(task)
    if isinstance(task, MulticlassTask):
        train, val = (train[0], train[1].astype(int)), (val[0], val[1].astype(int))

    def make(params: dict[str, Any]) -> Any:
        estimator = lgb.LGBMRegressor if search.regressor else lgb.LGBMClassifier
        return estimator(
            n_estimators=budget.n_estimators,
            random_state=seed,
            deterministic=True,
            force_col_wise=True,
            n_jobs=1,
            verbose=-1,
            subsample_freq=1,
            **params,
        )

    trial_train, trial_val = (sample_rows(m, budget.max_rows, seed) for m in (train, val))

    def fit(params: dict[str, Any], train: Matrix, val: Matrix) -> Any:
        model = make(params)
        model.fit(
            *train,
            eval_X=(val[0],),
            eval_y=(val[1],),
            eval_metric=search.eval_metric,
            callbacks=[lgb.early_stopping(budget.early_stopping_rounds, verbose=False)],
        )
        return model

    def objective(trial: optuna.Trial) -> float:
        model = fit(
            {
                "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
                "num_leaves": trial.suggest_int("num_leaves", 4, 64, log=True),
                "min_child_samples": trial.suggest_int("min_child_samples", 5, 200, log=True),
                "subsample": trial.suggest_float("subsample", 0.5, 1.0),
                "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
                "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
            },
            trial_train,
            trial_val,
        )
        return search.trial_score(trial_val[1], scores(model, trial_val[0], task))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction=search.direction, sampler=optuna.samplers.TPESampler(seed=seed)
    )
    study.optimize(objective, n_trials=budget.n_trials)
    return fit(study.best_params, train, val)


def scores(model: Any, x: np.ndarray, task: Task | None = None) -> np.ndarray:
    """The baseline's prediction in the task's shape (`task` None: binary): P(positive)
    (rows,); every class's probability (rows, classes) in `task.classes` order, a class the
    model never saw in training at 0; the value (rows,)."""
    if isinstance(task, RegressionTask):
        return np.asarray(model.predict(x), dtype=np.float64)
    if isinstance(task, MulticlassTask):
        proba = np.zeros((len(x), task.n_outputs))
        proba[:, np.asarray(model.classes_).astype(int)] = model.predict_proba(x)
        return proba
    return np.asarray(model.predict_proba(x)[:, 1], dtype=np.float64)
