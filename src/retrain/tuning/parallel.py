"""Parallel tuning that replays: a batched ask/tell study over worker processes.

Free-running parallel TPE is not reproducible (which worker asks next depends on timing), so
the coordinator alone talks to the sampler. For each batch it asks `tune.batch` trials from the
seeded sampler (sampling their parameters here), hands them to workers, waits for every one,
then tells the results in trial-number order. Pruning stays deterministic for free: Optuna's
MedianPruner compares a trial only with COMPLETE trials, and nothing completes until its
batch is told, so a worker's pruning decision sees exactly the earlier batches, whatever the
timing. The same seed and batch size give the same trials and best parameters on any engine
and storage.

The trial budget is shared, counted as Optuna's `MaxTrialsCallback(n_trials,
states=(COMPLETE, PRUNED))` counts it, but by the coordinator: that callback stops a
`study.optimize` loop, and here no process runs one (workers evaluate asked trials, only the
coordinator asks). It asks at most tune.n_trials minus the finished trials per batch, so
workers beyond tune.batch wait idle rather than add trials, and the study ends with exactly
tune.n_trials finished trials. A worker that dies stops beating; the coordinator fails its
trial (`fail_stale_trials`) and `RetryFailedTrialCallback` queues a copy with the same
parameters, which is asked and evaluated within the same batch: a FAIL is not counted, so
the study's results do not change, only a FAIL row and a later trial number appear (tests
count the trials in the storage after such runs).

Engines: `prefect` sends each trial with `evaluate_trial.delay()` to Prefect task workers
(`prefect task serve -m retrain.tuning.worker`, started here when tune.start_workers, or
already serving on other machines); `dask` runs them with prefect-dask's DaskTaskRunner on a
LocalCluster, or on the cluster at tune.dask_address.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import BaseStorage, fail_stale_trials
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import TrialState

from retrain.config import Params
from retrain.errors import RetrainError
from retrain.tuning.storage import describe, grace_s, open_storage
from retrain.tuning.worker import outcome_attr, worker_attr

POLL_S = 0.5
COORDINATOR_ATTR = "retrain:coordinator"  # the coordinator's last probe write (time.time())
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

Submit = Callable[[dict[str, Any]], Any]


class TuneError(RetrainError):
    """A trial failed on a worker, or the workers could not be reached."""


def mode(params: Params) -> dict[str, Any]:
    """What the record says about how the study ran (best_params.json's `tuning`)."""
    cfg = params.tune
    return {
        "mode": "batched",
        "workers": cfg.workers,
        "batch": cfg.batch or cfg.workers,
        "engine": cfg.engine,
        # The kind only: a path or a host differs between a run and its replay in a fresh clone.
        "storage": describe(cfg.storage).split(":")[0],
    }


def worker_threads(params: Params) -> int:
    """torch threads per worker: the pinned value, else this machine's cores shared out."""
    return params.train.num_threads or max(1, (os.cpu_count() or 1) // params.tune.workers)


def absolute(params: Params, root: Path) -> dict[str, Any]:
    """`params` as JSON with every relative path made absolute (workers may run elsewhere)."""
    raw = params.model_dump(mode="json")
    for key, value in raw["paths"].items():
        if value is not None and not Path(value).is_absolute():
            raw["paths"][key] = str(root / value)
    suite = raw["dataset"].get("suite")
    if suite and not Path(suite).is_absolute():
        raw["dataset"]["suite"] = str(root / suite)
    # The default study file (sqlite:///models/tune/... as a journal) is relative too.
    for prefix in ("sqlite:///", "journal:"):
        storage = raw["tune"]["storage"]
        if storage.startswith(prefix) and not Path(storage.removeprefix(prefix)).is_absolute():
            raw["tune"]["storage"] = prefix + str(root / storage.removeprefix(prefix))
    return raw


def run_batches(
    params: Params, study: optuna.Study, storage: BaseStorage, submit: Submit
) -> optuna.Study:
    """Ask a batch, submit it, wait for every outcome (retrying dead workers' trials), tell it
    in trial order; until tune.n_trials trials finished (or tune.timeout_s)."""
    from retrain.stages.tune import suggest

    cfg = params.tune
    size = cfg.batch or cfg.workers
    spec = {"params": absolute(params, Path.cwd()), "num_threads": worker_threads(params)}
    began = time.monotonic()
    stall_s = grace_s(cfg)

    def finished() -> int:
        return len(study.get_trials(deepcopy=False, states=FINISHED))

    def ask() -> optuna.Trial:
        trial = study.ask()
        suggest(trial, cfg)  # sampled here, by the one seeded sampler; a retry keeps its values
        submit({**spec, "trial_id": trial._trial_id})
        return trial

    while finished() < cfg.n_trials:
        if cfg.timeout_s is not None and time.monotonic() - began > cfg.timeout_s:
            print(f"tune: stopped by tune.timeout_s after {finished()} trials (not reproducible)")
            break
        count = min(size, cfg.n_trials - finished())
        pending = {t.number: t for t in (ask() for _ in range(count))}
        done: dict[int, tuple[optuna.Trial, dict[str, Any]]] = {}
        tick, judge_after, probe_at = time.monotonic(), 0.0, 0.0
        while pending:
            time.sleep(POLL_S)
            if time.monotonic() >= probe_at:
                # Reads take no lock, so polling alone never notices a stall on the journal's
                # lock (left by a writer killed while holding it): a write does. One that
                # waits longer than a beat interval held the workers' beats back as well.
                probe_at = time.monotonic()
                _probe(storage, study)
                now = time.monotonic()
                if now - probe_at > cfg.heartbeat_s:
                    judge_after = max(judge_after, now + stall_s)
                probe_at = now + cfg.heartbeat_s
            _keep_alive(storage, done)
            lost = False
            for number, trial in list(pending.items()):
                frozen = storage.get_trial(trial._trial_id)
                outcome = frozen.system_attrs.get(outcome_attr(trial._trial_id))
                if outcome is not None and frozen.state == TrialState.RUNNING:
                    _beat(storage, trial._trial_id)
                    if outcome["state"] == "FAIL":
                        study.tell(trial, state=TrialState.FAIL)
                        raise TuneError(f"trial {number} failed on a worker: {outcome['error']}")
                    done[number] = (trial, outcome)
                    del pending[number]
            now = time.monotonic()
            if now - tick > stall_s:
                # This process was blocked (by a stalled write, or starved of CPU): so may the
                # workers' beats have been. Silence is evidence of death only after they had
                # time to beat again.
                judge_after = max(judge_after, now + stall_s)
            tick = now
            if now >= judge_after:
                _keep_alive(storage, done)  # its own trials are never stale to the judge
                with warnings.catch_warnings():  # experimental since Optuna 2.9, still in 5
                    warnings.simplefilter("ignore", ExperimentalWarning)
                    fail_stale_trials(study)  # a silent worker's trial: FAIL, a WAITING retry
            for number, trial in list(pending.items()):
                frozen = storage.get_trial(trial._trial_id)
                if frozen.state == TrialState.FAIL:
                    where = frozen.system_attrs.get(worker_attr(trial._trial_id), "?")
                    print(f"tune: trial {number}'s worker ({where}) went silent; retrying it")
                    del pending[number]
                    lost = True
            if lost:
                # A dead worker may also have held trials it had not started (a Prefect task
                # worker takes the next run before a slot frees): send those again. Running a
                # trial twice is harmless, its outcome is the same; a told one is skipped.
                for trial in pending.values():
                    frozen = storage.get_trial(trial._trial_id)
                    if worker_attr(trial._trial_id) not in frozen.system_attrs:
                        submit({**spec, "trial_id": trial._trial_id})
            for _ in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                retry = ask()
                pending[retry.number] = retry
        for number in sorted(done):
            trial, outcome = done[number]
            if storage.get_trial(trial._trial_id).state != TrialState.RUNNING:
                continue  # failed as stale after all; its retry was run and told
            if outcome["state"] == "COMPLETE":
                study.tell(trial, outcome["value"])
            else:
                study.tell(trial, state=TrialState.PRUNED)
    return study


def _probe(storage: BaseStorage, study: optuna.Study) -> None:
    """One small write to the storage (the coordinator's clock), timed by the caller."""
    storage.set_study_system_attr(study._study_id, COORDINATOR_ATTR, time.time())


def _beat(storage: BaseStorage, trial_id: int) -> bool:
    """Beat for a running trial; False when it has finished (failed as stale) meanwhile."""
    if isinstance(storage, BaseHeartbeat) and storage.get_heartbeat_interval() is not None:
        try:
            storage.record_heartbeat(trial_id)
        except UpdateFinishedTrialError:
            return False
    return True


def _keep_alive(
    storage: BaseStorage, done: dict[int, tuple[optuna.Trial, dict[str, Any]]]
) -> None:
    """Beat for the trials whose outcome is in but that are told only with their batch; one
    failed as stale meanwhile leaves `done` (its retry, queued by the callback, runs again)."""
    for number, (trial, _) in list(done.items()):
        if not _beat(storage, trial._trial_id):
            del done[number]


def tune_batched(params: Params) -> optuna.Study:
    """The parallel tune stage's study: create it once here, then run the batches on the
    engine named by tune.engine."""
    from retrain.stages.tune import fresh_study, warm_start_trial

    cfg = params.tune
    storage = open_storage(cfg, fresh=True)
    study = fresh_study(params, storage)
    warm = warm_start_trial(params.paths.warm_start, cfg, params.model)  # as sequential
    if warm:
        study.enqueue_trial(warm)
        print(f"tune: trial 0 is the champion's parameters {warm}")
    how = mode(params)
    print(
        f"tune: batched ask/tell, {how['batch']} trials a batch on {cfg.workers} {cfg.engine} "
        f"workers, study in {how['storage']}"
    )
    if cfg.engine == "dask":
        return _on_dask(params, study, storage)
    with _prefect_workers(params):
        from retrain.tuning.worker import evaluate_trial

        return run_batches(params, study, storage, evaluate_trial.delay)


def _on_dask(params: Params, study: optuna.Study, storage: BaseStorage) -> optuna.Study:
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as err:
        raise TuneError(
            "tune.engine dask needs prefect-dask: pip install 'retrain[dask]'"
        ) from err
    from prefect import flow

    from retrain.tuning.worker import evaluate_trial

    cfg = params.tune
    runner: Any  # a TaskRunner; prefect-dask's generic type is not Prefect's annotation
    if cfg.dask_address:
        runner = DaskTaskRunner(address=cfg.dask_address)
    else:
        runner = DaskTaskRunner(
            cluster_kwargs={
                "n_workers": cfg.workers,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        )
    futures: list[Any] = []

    def submit(spec: dict[str, Any]) -> None:
        futures.append(evaluate_trial.submit(spec))

    @flow(name="tune-dask", task_runner=runner, log_prints=False)
    def tune_on_dask() -> None:
        run_batches(params, study, storage, submit)
        for future in futures:
            future.wait()

    tune_on_dask()
    return study


@contextmanager
def _prefect_workers(params: Params) -> Iterator[None]:
    """`tune.workers` local `prefect task serve` processes for the study's duration (each runs
    one trial at a time), or none when tune.start_workers is false (yours serve elsewhere)."""
    from prefect.settings import PREFECT_API_URL

    cfg = params.tune
    if not PREFECT_API_URL.value():
        raise TuneError(
            "tune.engine prefect sends trials through a Prefect server: set PREFECT_API_URL "
            "(`retrain stack up` starts one) or use tune.engine: dask"
        )
    if not cfg.start_workers:
        yield
        return
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    workers = [
        subprocess.Popen(
            [prefect, "task", "serve", "-m", "retrain.tuning.worker", "--limit", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own group: stopped with its children below
        )
        for _ in range(cfg.workers)
    ]
    try:
        yield
    finally:
        for proc in workers:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in workers:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
