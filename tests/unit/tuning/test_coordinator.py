"""The parallel-tuning coordinator through a stall: a writer killed while holding the journal
file's lock blocks every process (the coordinator and the workers' heartbeats alike) until the
lock is freed. Live trials must not then be failed as stale for beats they could not write."""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from typing import Any

import optuna
from optuna.storages.journal import JournalFileSymlinkLock
from optuna.trial import TrialState

from retrain.config import parse_params
from retrain.tuning.parallel import run_batches
from retrain.tuning.storage import Heartbeat, open_storage
from retrain.tuning.worker import outcome_attr, worker_attr

BEAT_S, GRACE_S = 1, 3
STALL_S = 2 * GRACE_S  # every beat is late by more than the grace period when it ends
WORK_S = STALL_S + 3


def test_a_stall_on_the_journal_lock_does_not_fail_live_trials(tmp_path, default_params_raw):
    journal = tmp_path / "study.journal"
    raw = copy.deepcopy(default_params_raw)
    raw["tune"].update(
        n_trials=2,
        workers=2,
        heartbeat_s=BEAT_S,
        grace_s=GRACE_S,
        storage=f"journal:{journal}",
        study_name="stall",
    )
    params = parse_params(raw)
    storage = open_storage(params.tune, fresh=True)
    study = optuna.create_study(
        study_name="stall",
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=0),
    )
    both_working = threading.Barrier(3, timeout=60)
    threads: list[threading.Thread] = []

    def worker(spec: dict[str, Any]) -> None:
        # What retrain.tuning.worker does around the objective, in a thread of its own with its
        # own storage object (as a worker process has); the objective is a sleep through the
        # stall for the first two trials, and instant for a retry (there should be none).
        trial_id = spec["trial_id"]
        own = open_storage(params.tune)
        own.set_trial_system_attr(trial_id, worker_attr(trial_id), "thread")
        first_run = own.get_trial(trial_id).number < 2
        with Heartbeat(own, trial_id):
            if first_run:
                both_working.wait()
                time.sleep(WORK_S)
            outcome = {"state": "COMPLETE", "value": 0.5}
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                own.set_trial_system_attr(trial_id, outcome_attr(trial_id), outcome)

    def submit(spec: dict[str, Any]) -> None:
        thread = threading.Thread(target=worker, args=(spec,), daemon=True)
        threads.append(thread)
        thread.start()

    def killed_writer() -> None:
        # Takes the journal's lock as Optuna's writers do and holds it for STALL_S: what a
        # writer SIGKILLed inside a write leaves until the lock's own grace period frees it.
        # Reads take no lock: the coordinator keeps polling; only writes (beats) wait.
        both_working.wait()
        time.sleep(BEAT_S)
        lock = JournalFileSymlinkLock(str(journal))
        lock.acquire()
        time.sleep(STALL_S)
        lock.release()

    stall = threading.Thread(target=killed_writer, daemon=True)
    stall.start()
    run_batches(params, study, storage, submit)
    stall.join()
    for thread in threads:
        thread.join()
    trials = study.get_trials(deepcopy=False)
    # Both trials finished on their first run: none was failed as stale and retried.
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert len(threads) == 2
