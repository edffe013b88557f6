"""Stage `tune`: a seeded Optuna TPE study with pruning on Lightning's validation ROC AUC.

The study's first trial is the production model's parameters when paths.warm_start names
them (the retrain flow writes that file before the pipeline runs; a fresh clone holds the
committed "no champion" version), so a retrain never does worse than re-fitting the
champion's configuration. The best parameters go to a stage output (paths.best_params);
params.yaml is never rewritten.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from retrain.config import (
    ARCHITECTURE_KEYS,
    Categorical,
    FloatRange,
    IntRange,
    ModelParams,
    Params,
    TuneParams,
)
from retrain.data.preprocess import Preprocessor
from retrain.data.splits import load_splits, sample_rows
from retrain.files import write_json
from retrain.models.training import MONITOR, fit
from retrain.stages._common import stage_main


def suggest(trial: optuna.Trial, space: TuneParams) -> dict[str, Any]:
    """Sample every dimension of the search space declared in params.yaml."""
    values: dict[str, Any] = {}
    for name, dim in space.search_space.items():
        if isinstance(dim, FloatRange):
            values[name] = trial.suggest_float(name, dim.low, dim.high, log=dim.log)
        elif isinstance(dim, IntRange):
            values[name] = trial.suggest_int(name, dim.low, dim.high, log=dim.log)
        elif isinstance(dim, Categorical):
            values[name] = trial.suggest_categorical(name, dim.choices)
    return values


def warm_start_trial(
    path: Path, space: TuneParams, model: ModelParams | None = None
) -> dict[str, Any] | None:
    """The champion's values of the searched hyperparameters, to enqueue as trial 0.

    A value outside today's search space is left out (the sampler picks it instead), so a
    narrowed search space never sends the study outside its bounds. A champion of another
    network family than `model`'s (e.g. the plain MLP before issue 14, whose parameters lack
    the ensemble and embedding keys) passes on only what still applies, the optimiser's
    values; its widths, depth and dropout were chosen for another network. Said in the log.
    """
    if not path.exists():
        return None
    champion = json.loads(path.read_text()).get("params")
    if not champion:
        return None
    if model is not None:
        try:
            theirs: dict[str, Any] | None = ModelParams.model_validate(champion).architecture()
        except ValueError:  # pydantic's ValidationError: parameters of no network we know
            theirs = None
        if theirs != model.architecture():
            dropped = sorted(k for k in champion if k in ARCHITECTURE_KEYS)
            champion = {k: v for k, v in champion.items() if k not in ARCHITECTURE_KEYS}
            print(
                f"tune: the champion is another network ({theirs}, this run trains "
                f"{model.architecture()}): its {', '.join(dropped) or 'architecture'} "
                "not carried over"
            )
    values: dict[str, Any] = {}
    for name, dim in space.search_space.items():
        if name not in champion:
            continue
        value = champion[name]
        if isinstance(dim, FloatRange | IntRange) and not dim.low <= value <= dim.high:
            continue
        if isinstance(dim, Categorical) and value not in dim.choices:
            continue
        values[name] = value
    if not values:
        print("tune: none of the champion's parameters applies here: no warm start")
    return values or None


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
        direction="maximize",
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
    # The same column groups `train` uses (they only set the members' initial scalings).
    groups = Preprocessor.load(params.paths.preprocessor).groups()

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
            callbacks=[PyTorchLightningPruningCallback(trial, monitor=MONITOR)],
            bins=bins,
            groups=groups,
            precision=params.train.precision,  # trials train as the final fit does
        )
        trial.set_user_attr("epochs", result.epochs_run)
        return result.best_score

    return objective


def run(params: Params) -> ModelParams:
    """Tune, then write the full best hyperparameters (defaults plus tuned values)."""
    cfg = params.tune
    if cfg.n_trials == 0:
        return _no_search(params)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if cfg.workers > 1:  # batched ask/tell over worker processes: retrain.tuning.parallel
        from retrain.tuning.parallel import mode, tune_batched

        return finish(params, tune_batched(params), {"tuning": mode(params)})
    objective = make_objective(params, *trial_data(params))
    study = fresh_study(params)
    warm = warm_start_trial(params.paths.warm_start, cfg, params.model)
    if warm:
        study.enqueue_trial(warm)
        print(f"tune: trial 0 is the champion's parameters {warm}")
    study.optimize(
        objective,
        n_trials=cfg.n_trials,
        timeout=cfg.timeout_s,
        callbacks=[lambda study, trial: print(trial_line(study, trial, cfg.n_trials), flush=True)],
    )
    return finish(params, study)


def finish(
    params: Params, study: optuna.Study, extra: dict[str, Any] | None = None
) -> ModelParams:
    """Write the best parameters and the trials table; return the full best parameters."""
    best = params.model.model_copy(update=study.best_params)
    states = [t.state.name for t in study.trials]
    write_json(
        params.paths.best_params,
        {
            "params": best.model_dump(),
            "best_value": study.best_value,
            "best_trial": study.best_trial.number,
            "metric": MONITOR,
            "n_trials": len(study.trials),
            "n_complete": states.count("COMPLETE"),
            "n_pruned": states.count("PRUNED"),
            **(extra or {}),
        },
    )
    _write_trials(params.paths.tune_trials, study)
    print(
        f"tune: best {MONITOR} {study.best_value:.4f} (trial {study.best_trial.number}); "
        f"{states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned"
    )
    return best


def trial_line(study: optuna.Study, trial: optuna.trial.FrozenTrial, n_trials: int) -> str:
    """`tune: trial 3 of 16: 0.8412 (best 0.8456, trial 1)`, or `... pruned at epoch 5`.

    The retrain flow reads these lines back for its progress artifact (`n of N`).
    """
    head = f"tune: trial {trial.number + 1} of {n_trials}:"
    if trial.state.name == "PRUNED":
        steps = trial.intermediate_values
        epoch = max(steps) + 1 if steps else 0
        what = f"pruned at epoch {epoch}"
    elif trial.value is not None:
        what = f"{trial.value:.4f}"
    else:
        what = trial.state.name.lower()
    try:
        best = f"best {study.best_value:.4f}, trial {study.best_trial.number + 1}"
    except ValueError:  # no trial completed yet
        best = "no complete trial yet"
    return f"{head} {what} ({best})"


def _no_search(params: Params) -> ModelParams:
    """tune.n_trials 0: the model section as it stands is what `train` fits."""
    write_json(
        params.paths.best_params,
        {
            "params": params.model.model_dump(),
            "best_value": None,
            "best_trial": None,
            "metric": MONITOR,
            "n_trials": 0,
            "n_complete": 0,
            "n_pruned": 0,
        },
    )
    params.paths.tune_trials.parent.mkdir(parents=True, exist_ok=True)
    params.paths.tune_trials.write_text("trial,state,value\n")
    print("tune: tune.n_trials is 0: no search, train fits the model section of params.yaml")
    return params.model


def _write_trials(path: Path, study: optuna.Study) -> None:
    names = sorted({k for t in study.trials for k in t.params})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["trial", "state", "value", *names])
        for t in study.trials:
            value = "" if t.value is None else f"{t.value:.6f}"
            writer.writerow([t.number, t.state.name, value, *(t.params.get(n, "") for n in names)])


def main() -> None:
    stage_main("tune", run)


if __name__ == "__main__":
    main()
