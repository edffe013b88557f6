"""The journal storage's heartbeats: a silent trial is failed and retried with its parameters;
the retry is not failed for its predecessor's last beat."""

from __future__ import annotations

import time

import optuna
import pytest

from retrain.config import TuneParams
from retrain.tuning.storage import (
    Heartbeat,
    StorageError,
    describe,
    fail_stale_trials,
    open_storage,
)
from retrain.tuning.worker import outcome_attr


def tune_params(storage: str, **kw) -> TuneParams:
    return TuneParams(
        n_trials=2,
        max_epochs=1,
        patience=1,
        storage=storage,
        study_name="s",
        search_space={"lr": {"type": "float", "low": 0.001, "high": 0.1}},
        **kw,
    )


def test_sqlite_becomes_a_journal_file_and_bare_postgresql_is_refused(tmp_path):
    assert describe("sqlite:///models/tune/optuna.db") == "journal:models/tune/optuna.journal"
    assert describe("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    with pytest.raises(StorageError, match="postgresql\\+psycopg2"):
        open_storage(tune_params("postgresql://u@h/db"))


def test_a_silent_trial_is_failed_and_retried_with_its_parameters(tmp_path):
    cfg = tune_params(f"journal:{tmp_path / 's.journal'}", heartbeat_s=1, grace_s=1)
    storage = open_storage(cfg, fresh=True)
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    trial = study.ask()
    lr = trial.suggest_float("lr", 0.001, 0.1)
    with Heartbeat(storage, trial._trial_id):
        time.sleep(2.5)  # beating: never stale
        fail_stale_trials(study, storage)
        assert storage.get_trial(trial._trial_id).state == optuna.trial.TrialState.RUNNING
    time.sleep(2.5)  # the worker is gone
    fail_stale_trials(study, storage)
    assert storage.get_trial(trial._trial_id).state == optuna.trial.TrialState.FAIL
    (waiting,) = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    retry = study.ask()
    assert retry.number == waiting.number == 1
    assert retry.suggest_float("lr", 0.001, 0.1) == lr
    # The retry carries its predecessor's system attributes (its last beat among them); the
    # retry has not beaten yet, so it must not be stale.
    fail_stale_trials(study, storage)
    assert storage.get_trial(retry._trial_id).state == optuna.trial.TrialState.RUNNING
    assert outcome_attr(retry._trial_id) != outcome_attr(trial._trial_id)
