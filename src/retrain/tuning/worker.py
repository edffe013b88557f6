"""One tuning trial on a worker process: what `prefect task serve -m retrain.tuning.worker`
serves and what a Dask worker runs.

The coordinator (retrain.tuning.parallel) has already asked the trial and sampled its
parameters; the worker loads the study, runs the tune stage's own objective on that trial (all
its folds, reporting the running mean after each to the shared storage for pruning) under a
heartbeat, and writes the outcome as a system attribute of the trial. It never tells the
study: the coordinator does, in trial order, which is what keeps a parallel study reproducible.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import optuna
from prefect import task
from prefect.cache_policies import NO_CACHE

from retrain.config import parse_params
from retrain.tuning.storage import Heartbeat, open_storage
from retrain.tuning.study import make_objective, make_pruner, trial_data

# Folds per (paths, sample, folds, seed) in this process: a worker evaluates many trials of one
# table.
_DATA: dict[str, Any] = {}


def outcome_attr(trial_id: int) -> str:
    # Keyed by trial id for the same reason as the heartbeat (retries copy system attributes).
    return f"retrain:outcome:{trial_id}"


def worker_attr(trial_id: int) -> str:
    return f"retrain:worker:{trial_id}"


def evaluate(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one asked trial and store its outcome: COMPLETE with a value, PRUNED, or FAIL.

    Args:
        spec: `params` (the params as JSON, absolute paths), `trial_id` and `num_threads`.

    Returns:
        The outcome also stored on the trial; `{"state": "SKIPPED"}` when the trial is no longer
        running (failed by its heartbeat while this task waited, and retried as another trial).
    """
    params = parse_params(spec["params"])
    cfg = params.tune
    trial_id = int(spec["trial_id"])
    storage = open_storage(cfg)
    if storage.get_trial(trial_id).state != optuna.trial.TrialState.RUNNING:
        return {"state": "SKIPPED"}
    # Claim and beat first: a worker that dies while loading is noticed like one mid-training.
    storage.set_trial_system_attr(trial_id, worker_attr(trial_id), _where())
    outcome: dict[str, Any]
    with Heartbeat(storage, trial_id):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(
            study_name=cfg.study_name,
            storage=storage,
            # Never used to sample (the coordinator did); seeded all the same.
            sampler=optuna.samplers.RandomSampler(seed=params.seed),
            pruner=make_pruner(cfg),
        )
        key = repr((spec["params"]["paths"], cfg.max_rows, cfg.folds, params.seed))
        if key not in _DATA:
            _DATA.clear()
            _DATA[key] = trial_data(params)
        folds, bins = _DATA[key]
        objective = make_objective(params, folds, bins, num_threads=spec.get("num_threads"))
        trial = optuna.Trial(study, trial_id)
        try:
            outcome = {"state": "COMPLETE", "value": float(objective(trial))}
        except optuna.TrialPruned:
            outcome = {"state": "PRUNED"}
        except Exception as err:  # told to the coordinator, which stops the study with it
            outcome = {"state": "FAIL", "error": f"{type(err).__name__}: {err}"}
        try:
            storage.set_trial_system_attr(trial_id, outcome_attr(trial_id), outcome)
        except optuna.exceptions.UpdateFinishedTrialError:
            return {"state": "SKIPPED"}  # a duplicate: the other run's outcome was told first
    return outcome


def _where() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# The Prefect task both engines run: `.delay()` to `prefect task serve` workers, `.submit()` on
# prefect-dask's DaskTaskRunner. Its outcome lives in the study, so nothing is cached here.
evaluate_trial = task(name="tune-trial", cache_policy=NO_CACHE, log_prints=False)(evaluate)
