"""The study and its objective, shared by the sequential tune stage (retrain.stages.tune), the
parallel coordinator (retrain.tuning.parallel) and its workers (retrain.tuning.worker): one
module all three import, so none of them imports another.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from retrain.config import Params, TuneParams
from retrain.data.preprocess import Preprocessor
from retrain.data.splits import load_splits, sample_rows
from retrain.models.training import fit
from retrain.task import task_for
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


Matrix = tuple[Any, Any]


def trial_data(params: Params) -> tuple[Matrix, Matrix, Any]:
    """The train and validation matrices every trial sees (a seeded sample when large), and
    the numeric columns' bins for the embeddings (fitted by prepare on the training split)."""
    cfg = params.tune
    splits = load_splits(params.paths, ("train", "val"))
    bins = splits.preprocessor.embedded()
    train, val = (
        sample_rows(splits.matrix(name), cfg.max_rows, params.seed) for name in ("train", "val")
    )
    if cfg.max_rows is not None and len(splits.frames["train"]) > cfg.max_rows:
        print(f"tune: trials see a seeded sample of {cfg.max_rows:,} rows per split")
    return train, val, bins


def make_objective(
    params: Params, train: Matrix, val: Matrix, bins: Any, num_threads: int | None = None
) -> Callable[[optuna.Trial], float]:
    """The objective; a parallel worker calls it on a trial the coordinator already sampled
    (`suggest` then reads the stored values back)."""
    from optuna_integration import PyTorchLightningPruningCallback

    cfg = params.tune
    task = task_for(params.dataset)
    # The same column groups and target scale `train` uses (the groups only set the members'
    # initial scalings; the scale is the regression target's, fitted on the whole train split).
    preprocessor = Preprocessor.load(params.paths.preprocessor)
    groups, target = preprocessor.groups(), preprocessor.target_scale()

    def objective(trial: optuna.Trial) -> float:
        hp = params.model.model_copy(update=suggest(trial, cfg))
        result = fit(
            train,
            val,
            hp,
            seed=params.seed,
            max_epochs=cfg.max_epochs,
            patience=cfg.patience,
            accelerator=params.train.accelerator,
            num_threads=num_threads or params.train.num_threads,
            callbacks=[PyTorchLightningPruningCallback(trial, monitor=task.monitor)],
            bins=bins,
            groups=groups,
            precision=params.train.precision,  # trials train as the final fit does
            task=task,
            target=target,
        )
        trial.set_user_attr("epochs", result.epochs_run)
        return result.best_score

    return objective
