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

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from retrain.config import Params
from retrain.errors import RetrainError
from retrain.tuning.space import start_trial, suggest
from retrain.tuning.storage import (
    describe,
    fail_stale_trials,
    grace_s,
    heartbeat_interval,
    open_storage,
    record_heartbeat,
)
from retrain.tuning.study import fresh_study
from retrain.tuning.worker import evaluate_trial, outcome_attr, worker_attr

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


@dataclass
class Asked:
    """A trial the coordinator asked, with its storage id (what workers and beats use)."""

    trial: optuna.Trial
    trial_id: int


Done = dict[int, tuple[Asked, dict[str, Any]]]  # by trial number: the trial and its outcome


@dataclass
class StallClock:
    """When silence may be read as a dead worker: not until beats had time to arrive again
    after anything that held them back (a slow probe write, this process starved of CPU)."""

    beat_s: float
    stall_s: float
    tick: float = field(default_factory=time.monotonic)
    judge_after: float = 0.0
    probe_at: float = 0.0

    def probe_due(self) -> bool:
        return time.monotonic() >= self.probe_at

    def probed(self, began: float) -> None:
        """After a probe write begun at `began`: one that waited longer than a beat interval
        held the workers' beats back as well."""
        now = time.monotonic()
        if now - began > self.beat_s:
            self._hold(now)
        self.probe_at = now + self.beat_s

    def may_judge(self) -> bool:
        """Once per poll: False while a stall (of the storage or of this process) is recent."""
        now = time.monotonic()
        if now - self.tick > self.stall_s:
            self._hold(now)
        self.tick = now
        return now >= self.judge_after

    def _hold(self, now: float) -> None:
        self.judge_after = max(self.judge_after, now + self.stall_s)


class Coordinator:
    """Asks, submits, waits for and tells one study's batches (see the module's docstring)."""

    def __init__(
        self, params: Params, study: optuna.Study, storage: BaseStorage, submit: Submit
    ) -> None:
        self.cfg = params.tune
        self.study, self.storage, self.submit = study, storage, submit
        self.study_id = storage.get_study_id_from_name(study.study_name)
        self.spec = {"params": absolute(params, Path.cwd()), "num_threads": worker_threads(params)}

    def finished(self) -> int:
        return len(self.study.get_trials(deepcopy=False, states=FINISHED))

    def ask(self) -> Asked:
        trial = self.study.ask()
        suggest(trial, self.cfg)  # sampled here, by the one seeded sampler; a retry keeps them
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(
            self.study_id, trial.number
        )
        self.submit({**self.spec, "trial_id": trial_id})
        return Asked(trial, trial_id)

    def run(self) -> optuna.Study:
        """Batches until tune.n_trials trials finished (or tune.timeout_s passed)."""
        began = time.monotonic()
        size = self.cfg.batch or self.cfg.workers
        while self.finished() < self.cfg.n_trials:
            timeout = self.cfg.timeout_s
            if timeout is not None and time.monotonic() - began > timeout:
                print(
                    f"tune: stopped by tune.timeout_s after {self.finished()} trials "
                    "(not reproducible)"
                )
                break
            count = min(size, self.cfg.n_trials - self.finished())
            pending = {a.trial.number: a for a in (self.ask() for _ in range(count))}
            self.tell(self.wait(pending))
        return self.study

    def wait(self, pending: dict[int, Asked]) -> Done:
        """Poll until every pending trial has an outcome, retrying dead workers' trials."""
        done: Done = {}
        clock = StallClock(self.cfg.heartbeat_s, grace_s(self.cfg))
        while pending:
            time.sleep(POLL_S)
            if clock.probe_due():
                # Reads take no lock, so polling alone never notices a stall on the journal's
                # lock (left by a writer killed while holding it): a write does.
                probe_began = time.monotonic()
                self.probe()
                clock.probed(probe_began)
            _keep_alive(self.storage, done)
            self.collect(pending, done)
            if clock.may_judge():
                _keep_alive(self.storage, done)  # its own trials are never stale to the judge
                fail_stale_trials(self.study, self.storage)  # FAIL, and a WAITING retry
            if self.drop_failed(pending):
                self.resubmit_unclaimed(pending)
            for _ in self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                retry = self.ask()
                pending[retry.trial.number] = retry
        return done

    def collect(self, pending: dict[int, Asked], done: Done) -> None:
        """Move the trials whose outcome arrived from `pending` to `done`; a FAIL stops all."""
        for number, asked in list(pending.items()):
            frozen = self.storage.get_trial(asked.trial_id)
            outcome = frozen.system_attrs.get(outcome_attr(asked.trial_id))
            if outcome is not None and frozen.state == TrialState.RUNNING:
                _beat(self.storage, asked.trial_id)
                if outcome["state"] == "FAIL":
                    self.study.tell(asked.trial, state=TrialState.FAIL)
                    raise TuneError(f"trial {number} failed on a worker: {outcome['error']}")
                done[number] = (asked, outcome)
                del pending[number]

    def drop_failed(self, pending: dict[int, Asked]) -> bool:
        """Forget the pending trials failed as stale (their retries are asked); any?"""
        lost = False
        for number, asked in list(pending.items()):
            frozen = self.storage.get_trial(asked.trial_id)
            if frozen.state == TrialState.FAIL:
                where = frozen.system_attrs.get(worker_attr(asked.trial_id), "?")
                print(f"tune: trial {number}'s worker ({where}) went silent; retrying it")
                del pending[number]
                lost = True
        return lost

    def resubmit_unclaimed(self, pending: dict[int, Asked]) -> None:
        # A dead worker may also have held trials it had not started (a Prefect task worker
        # takes the next run before a slot frees): send those again. Running a trial twice is
        # harmless, its outcome is the same; a told one is skipped.
        for asked in pending.values():
            frozen = self.storage.get_trial(asked.trial_id)
            if worker_attr(asked.trial_id) not in frozen.system_attrs:
                self.submit({**self.spec, "trial_id": asked.trial_id})

    def tell(self, done: Done) -> None:
        """Tell the batch's outcomes in trial-number order (what keeps the study replayable)."""
        for number in sorted(done):
            asked, outcome = done[number]
            if self.storage.get_trial(asked.trial_id).state != TrialState.RUNNING:
                continue  # failed as stale after all; its retry was run and told
            if outcome["state"] == "COMPLETE":
                self.study.tell(asked.trial, outcome["value"])
            else:
                self.study.tell(asked.trial, state=TrialState.PRUNED)

    def probe(self) -> None:
        """One small write to the storage (the coordinator's clock), timed by the caller."""
        self.storage.set_study_system_attr(self.study_id, COORDINATOR_ATTR, time.time())


def run_batches(
    params: Params, study: optuna.Study, storage: BaseStorage, submit: Submit
) -> optuna.Study:
    """Ask a batch, submit it, wait for every outcome (retrying dead workers' trials), tell it
    in trial order; until tune.n_trials trials finished (or tune.timeout_s)."""
    return Coordinator(params, study, storage, submit).run()


def _beat(storage: BaseStorage, trial_id: int) -> bool:
    """Beat for a running trial; False when it has finished (failed as stale) meanwhile."""
    if heartbeat_interval(storage) is not None:
        try:
            record_heartbeat(storage, trial_id)
        except UpdateFinishedTrialError:
            return False
    return True


def _keep_alive(storage: BaseStorage, done: Done) -> None:
    """Beat for the trials whose outcome is in but that are told only with their batch; one
    failed as stale meanwhile leaves `done` (its retry, queued by the callback, runs again)."""
    for number, (asked, _) in list(done.items()):
        if not _beat(storage, asked.trial_id):
            del done[number]


def tune_batched(params: Params) -> optuna.Study:
    """The parallel tune stage's study: create it once here, then run the batches on the
    engine named by tune.engine."""
    cfg = params.tune
    storage = open_storage(cfg, fresh=True)
    study = fresh_study(params, storage)
    start_trial(study, params)  # as sequential: the champion's, else the defaults
    how = mode(params)
    print(
        f"tune: batched ask/tell, {how['batch']} trials a batch on {cfg.workers} {cfg.engine} "
        f"workers, study in {how['storage']}"
    )
    if cfg.engine == "dask":
        return _on_dask(params, study, storage)
    with _prefect_workers(params):
        return run_batches(params, study, storage, evaluate_trial.delay)


def _on_dask(params: Params, study: optuna.Study, storage: BaseStorage) -> optuna.Study:
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as err:
        raise TuneError(
            "tune.engine dask needs prefect-dask: pip install 'retrain[dask]'"
        ) from err
    from prefect import flow

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
        _stop_workers(workers)


def _stop_workers(workers: list[subprocess.Popen[bytes]], grace: float = 5.0) -> None:
    """SIGTERM every worker's group, then SIGKILL what is left after one shared `grace`.

    Shared, not per worker: a task worker leaves on SIGTERM only once its trial is done
    (minutes), and a cancelled retrain gives this stage 10 s (retrain.infra.dvc's stop)
    before it is killed itself, which would leave the later workers running."""
    for proc in workers:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    for proc in workers:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
