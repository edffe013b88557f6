"""The study and its objective, shared by the sequential tune stage (retrain.stages.tune), the
parallel coordinator (retrain.tuning.parallel) and its workers (retrain.tuning.worker): one
module all three import, so none of them imports another.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from retrain.config import Params, TuneParams
from retrain.data.preprocess import Preprocessor
from retrain.data.splits import load_splits, sample_rows
from retrain.models.training import fit
from retrain.task import task_for
from retrain.tuning.folds import FOLD_SCORES, Fold, cv_folds, pool
from retrain.tuning.space import suggest


def _sqlite_dir(storage: str) -> None:
    if storage.startswith("sqlite:///"):
        Path(storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def make_pruner(cfg: TuneParams) -> optuna.pruners.BasePruner:
    """The pruner; parallel workers build the same one (a pruner is not stored with a study)."""
    return optuna.pruners.MedianPruner(
        n_startup_trials=cfg.pruner.n_startup_trials,
        n_warmup_steps=cfg.pruner.n_warmup_steps,
    )


def fresh_study(
    params: Params, storage: str | optuna.storages.BaseStorage | None = None
) -> optuna.Study:
    """Create the study, replacing one of the same name: a rerun must not inherit old trials."""
    cfg = params.tune
    if storage is None:
        _sqlite_dir(cfg.storage)
        storage = cfg.storage
    try:
        optuna.delete_study(study_name=cfg.study_name, storage=storage)
    except KeyError:
        pass
    return optuna.create_study(
        study_name=cfg.study_name,
        storage=storage,
        # The task's validation score: ROC AUC is maximised, log loss and RMSE minimised.
        direction="maximize" if task_for(params.dataset).monitor_mode == "max" else "minimize",
        sampler=optuna.samplers.TPESampler(seed=params.seed),
        pruner=make_pruner(cfg),
    )


def trial_data(params: Params) -> tuple[list[Fold], Any]:
    """The folds every trial fits and scores on (retrain.tuning.folds), from a seeded sample
    when large, and the numeric columns' bins for the embeddings (fitted by prepare on the
    training split). tune.folds 1: the train split, scored on the validation split."""
    cfg = params.tune
    splits = load_splits(params.paths, ("train", "val"))
    bins = splits.preprocessor.embedded()
    train, val = splits.matrix("train"), splits.matrix("val")
    if cfg.folds == 1:
        cut = [
            (
                sample_rows(train, cfg.max_rows, params.seed),
                sample_rows(val, cfg.max_rows, params.seed),
            )
        ]
        if cfg.max_rows is not None and len(train[1]) > cfg.max_rows:
            print(f"tune: trials see a seeded sample of {cfg.max_rows:,} rows per split")
        return cut, bins
    rows = pool(train, val)
    if cfg.max_rows is not None and len(rows[1]) > cfg.max_rows:
        print(f"tune: trials see a seeded sample of {cfg.max_rows:,} rows of train+validation")
    rows = sample_rows(rows, cfg.max_rows, params.seed)
    cut = cv_folds(rows, cfg.folds, params.seed, task_for(params.dataset))
    print(f"tune: each trial fits {cfg.folds} folds of {len(rows[1]):,} train+validation rows")
    return cut, bins


def make_objective(
    params: Params, folds: list[Fold], bins: Any, num_threads: int | None = None
) -> Callable[[optuna.Trial], float]:
    """The objective: the mean held-out score over `folds` (each fit early-stopped on its held
    out fold); after each fold but the last, the running mean is reported as step j and the
    pruner may stop the trial. A parallel worker calls it on a trial the coordinator already
    sampled (`suggest` then reads the stored values back)."""
    cfg = params.tune
    task = task_for(params.dataset)
    # The same column groups and target scale `train` uses (the groups only set the members'
    # initial scalings; the scale is the regression target's, fitted on the whole train split).
    preprocessor = Preprocessor.load(params.paths.preprocessor)
    groups, target = preprocessor.groups(), preprocessor.target_scale()

    def objective(trial: optuna.Trial) -> float:
        hp = params.model.model_copy(update=suggest(trial, cfg))
        scores: list[float] = []
        epochs: list[int] = []
        for j, (fit_on, held_out) in enumerate(folds):
            result = fit(
                fit_on,
                held_out,
                hp,
                seed=params.seed,
                max_epochs=cfg.max_epochs,
                patience=cfg.patience,
                accelerator=params.train.accelerator,
                num_threads=num_threads or params.train.num_threads,
                bins=bins,
                groups=groups,
                precision=params.train.precision,  # trials train as the final fit does
                task=task,
                target=target,
            )
            scores.append(result.best_score)
            epochs.append(result.epochs_run)
            # Stored as they come: a pruned trial keeps the folds it ran (trials.csv).
            trial.set_user_attr(FOLD_SCORES, scores)
            trial.set_user_attr("epochs", epochs)
            running = float(np.mean(scores))
            trial.report(running, j)
            # A trial is K fits now: one line per fold shows a long study moving.
            print(
                f"tune: trial {trial.number + 1}, fold {j + 1}/{len(folds)}: "
                f"{result.best_score:.4f} after {result.epochs_run} epochs (mean {running:.4f})",
                flush=True,
            )
            # Every trial's running mean after fold j is over the same rows: comparable.
            if j < len(folds) - 1 and trial.should_prune():
                raise optuna.TrialPruned(f"pruned after fold {j + 1}")
        return float(np.mean(scores))

    return objective
