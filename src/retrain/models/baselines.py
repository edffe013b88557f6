"""Baselines fitted on the same split in the same run: the bar our model must clear."""

from __future__ import annotations

from typing import Any

import numpy as np

from retrain.config import LightGBMBudget

Matrix = tuple[np.ndarray, np.ndarray]


def logistic_regression(train: Matrix, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=5000, random_state=seed)
    model.fit(*train)
    return model


def tuned_lightgbm(train: Matrix, val: Matrix, budget: LightGBMBudget, seed: int) -> Any:
    """LightGBM tuned by a seeded TPE study on validation ROC AUC, with early stopping.

    A default-parameter booster is a weak bar; this gets a small search of its own. The
    trials see at most `budget.max_rows` rows of each split; the final booster sees all.
    """
    import lightgbm as lgb
    import optuna
    from sklearn.metrics import roc_auc_score

    from retrain.data.splits import sample_rows

    def make(params: dict[str, Any]) -> lgb.LGBMClassifier:
        return lgb.LGBMClassifier(
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

    def fit(params: dict[str, Any], train: Matrix, val: Matrix) -> lgb.LGBMClassifier:
        model = make(params)
        model.fit(
            *train,
            eval_X=(val[0],),
            eval_y=(val[1],),
            eval_metric="auc",
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
        return float(roc_auc_score(trial_val[1], scores(model, trial_val[0])))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed)
    )
    study.optimize(objective, n_trials=budget.n_trials)
    return fit(study.best_params, train, val)


def scores(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict_proba(x)[:, 1], dtype=np.float64)
