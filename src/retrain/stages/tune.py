"""Stage `tune`: a seeded Optuna TPE study of the task's score (retrain.task's `monitor`:
ROC AUC maximised, log loss or RMSE minimised), cross-validated: a trial's value is the mean
held-out score over tune.folds folds of train+validation (retrain.tuning.folds), pruned on
the running mean after each fold.

The study's first trial is where the search starts: the production model's parameters when
paths.warm_start names them (the retrain flow writes that file before the pipeline runs; a
fresh clone holds the committed "no champion" version), else the model section's defaults;
on the same folds, so the parameters chosen are never worse than the start's. The best
parameters go to a stage output (paths.best_params); params.yaml is never rewritten.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain.config import ModelParams, Params
from retrain.files import write_json
from retrain.stages._common import stage_main
from retrain.task import task_for
from retrain.tuning.folds import FOLD_SCORES
from retrain.tuning.select import Choice, choose
from retrain.tuning.space import START, start_trial, suggest, warm_start_trial

if TYPE_CHECKING:
    import optuna

# Optuna, torch and Lightning are imported where a search runs (retrain.tuning.study): a stage
# with tune.n_trials 0 has nothing to search and returns without them (~1 s, not ~10 s).
__all__ = ["main", "run", "suggest", "trial_line", "warm_start_trial"]


def run(params: Params) -> ModelParams:
    """Tune, then write the full best hyperparameters (defaults plus tuned values)."""
    cfg = params.tune
    if cfg.n_trials == 0:
        return _no_search(params)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if cfg.workers > 1:  # batched ask/tell over worker processes: retrain.tuning.parallel
        from retrain.tuning.parallel import mode, tune_batched

        return finish(params, tune_batched(params), {"tuning": mode(params)})
    from retrain.tuning.study import fresh_study, make_objective, trial_data

    objective = make_objective(params, *trial_data(params))
    study = fresh_study(params)
    start_trial(study, params)
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
    """Write the chosen parameters and the trials table; return the full chosen parameters.

    The chosen trial is the best, unless the start (trial 0) is within tune.min_gain_se
    standard errors of it on the same folds (retrain.tuning.select)."""
    choice = _choose(params, study)
    trial = study.trials[choice.number]
    chosen = params.model.model_copy(update=trial.params)
    states = [t.state.name for t in study.trials]
    monitor = task_for(params.dataset).monitor
    folds = trial.user_attrs.get(FOLD_SCORES)
    write_json(
        params.paths.best_params,
        {
            "params": chosen.model_dump(),
            "best_value": trial.value,
            "best_trial": choice.number,
            "metric": monitor,
            "n_trials": len(study.trials),
            "n_complete": states.count("COMPLETE"),
            "n_pruned": states.count("PRUNED"),
            # The chosen trial's held-out score on each fold (its best_value is their mean).
            "cv_folds": params.tune.folds,
            "fold_scores": [round(v, 6) for v in folds] if folds is not None else None,
            "selection": {"min_gain_se": params.tune.min_gain_se, **choice.record()},
            **(extra or {}),
        },
    )
    _write_trials(params.paths.tune_trials, study, params.tune.folds)
    print(
        f"tune: best {monitor} {study.best_value:.4f} (trial {study.best_trial.number}); "
        f"{states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned"
    )
    if choice.kept_start:
        print(
            f"tune: trial {choice.best} beat the start by {choice.gain:+.4f} ± {choice.se:.4f} "
            f"(one standard error over {params.tune.folds} folds), within "
            f"tune.min_gain_se {params.tune.min_gain_se:g}: keeping the start, trial 0"
        )
    return chosen


def _choose(params: Params, study: optuna.Study) -> Choice:
    """The best trial, or the start when the best is not clearly better on the same folds."""
    first = study.trials[0]
    start_done = (
        study.user_attrs.get(START) is True
        and first.state.name == "COMPLETE"
        and len(first.user_attrs.get(FOLD_SCORES, [])) == params.tune.folds
    )
    return choose(
        study.best_trial.number,
        study.best_trial.user_attrs.get(FOLD_SCORES),
        first.user_attrs.get(FOLD_SCORES) if start_done else None,
        maximize=task_for(params.dataset).monitor_mode == "max",
        min_gain_se=params.tune.min_gain_se,
    )


def trial_line(study: optuna.Study, trial: optuna.trial.FrozenTrial, n_trials: int) -> str:
    """`tune: trial 3 of 16: 0.8412 (best 0.8456, trial 1)`, or `... pruned after fold 2`.

    The retrain flow reads these lines back for its progress artifact (`n of N`).
    """
    head = f"tune: trial {trial.number + 1} of {n_trials}:"
    if trial.state.name == "PRUNED":
        steps = trial.intermediate_values  # one per fold: the running mean
        what = f"pruned after fold {max(steps) + 1 if steps else 0}"
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
            "metric": task_for(params.dataset).monitor,
            "n_trials": 0,
            "n_complete": 0,
            "n_pruned": 0,
        },
    )
    params.paths.tune_trials.parent.mkdir(parents=True, exist_ok=True)
    params.paths.tune_trials.write_text("trial,state,value\n")
    print("tune: tune.n_trials is 0: no search, train fits the model section of params.yaml")
    return params.model


def _write_trials(path: Path, study: optuna.Study, folds: int) -> None:
    """One row per trial: its value (the folds' mean), each fold's score (blank for the folds a
    pruned trial did not run), its parameters."""
    names = sorted({k for t in study.trials for k in t.params})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["trial", "state", "value", *_fold_columns(folds), *names])
        for t in study.trials:
            value = "" if t.value is None else f"{t.value:.6f}"
            scores = list(t.user_attrs.get(FOLD_SCORES, []))
            cells = [f"{v:.6f}" for v in scores] + [""] * (folds - len(scores))
            writer.writerow(
                [t.number, t.state.name, value, *cells, *(t.params.get(n, "") for n in names)]
            )


def _fold_columns(folds: int) -> list[str]:
    return [f"fold_{j + 1}" for j in range(folds)]


def main() -> None:
    stage_main("tune", run)


if __name__ == "__main__":
    main()
