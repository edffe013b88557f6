"""The study's storage when trials run on several processes: a journal file or an RDB.

`tune.storage` says which: `journal:<path>` is Optuna's `JournalStorage` on a
`JournalFileBackend` (no server; its lock works on NFS), `postgresql+psycopg2://...` (or any
SQLAlchemy URL) is `RDBStorage`. A `sqlite:///<path>.db` URL (the sequential default) becomes
the journal file `<path>.journal` when tuning in parallel: SQLite does not take writers from
several processes well.

Both get heartbeats, so a worker that dies (SIGKILL, a lost node) has its trial failed and
retried by `RetryHeartbeatStaleTrialCallback` (Optuna 5's name for
`RetryFailedTrialCallback`). `RDBStorage` has them built in (its public
`heartbeat_interval`, `record_heartbeat` and `optuna.storages.fail_stale_trials`); Optuna 5's
`JournalStorage` has none, so `HeartbeatJournalStorage` adds them with public storage calls
only: a worker writes the time as a system attribute of its running trial, a trial whose last
beat is older than the grace period is stale, and `fail_stale_trials` here fails it and runs
the retry callback, as Optuna's does for an RDB (Optuna's own function only acts on storages
deriving from its private `BaseHeartbeat`).
"""

from __future__ import annotations

import copy
import threading
import time
import warnings
from pathlib import Path
from types import TracebackType

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.storages import (
    BaseStorage,
    JournalStorage,
    RDBStorage,
    RetryHeartbeatStaleTrialCallback,
)
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from retrain.config import TuneParams
from retrain.errors import RetrainError


def grace_s(cfg: TuneParams) -> int:
    """How long a trial may go without a beat before it is failed (default two beats)."""
    return cfg.grace_s or 2 * cfg.heartbeat_s


def heartbeat_attr(trial_id: int) -> str:
    # Keyed by trial id: RetryFailedTrialCallback copies system attributes to the retry, whose
    # own beats must not be read from its failed predecessor's last one.
    return f"retrain:heartbeat:{trial_id}"


class StorageError(RetrainError):
    """tune.storage names a storage parallel tuning cannot share."""


class HeartbeatJournalStorage(JournalStorage):
    """`JournalStorage` with the heartbeat protocol `RDBStorage` has (Optuna 5 gives the
    journal none): beats are system attributes, stamped with the writer's clock."""

    def __init__(
        self,
        backend: JournalFileBackend,
        heartbeat_interval: int,
        grace_period: int,
        failed_trial_callback: RetryHeartbeatStaleTrialCallback | None,
    ) -> None:
        super().__init__(backend)
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.failed_trial_callback = failed_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, heartbeat_attr(trial_id), time.time())

    def get_heartbeat_interval(self) -> int:
        return self.heartbeat_interval

    def stale_trial_ids(self, study_id: int) -> list[int]:
        """The running trials whose last beat is older than the grace period."""
        cutoff = time.time() - self.grace_period
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            trial_id = self.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            beat = trial.system_attrs.get(heartbeat_attr(trial_id))
            if beat is not None and beat < cutoff:
                stale.append(trial_id)
        return stale

    def fail_stale_trials(self, study: optuna.Study) -> None:
        """Fail the stale trials, then run the retry callback on each (as Optuna's function)."""
        failed = []
        for trial_id in self.stale_trial_ids(self.get_study_id_from_name(study.study_name)):
            try:
                if self.set_trial_state_values(trial_id, state=TrialState.FAIL):
                    failed.append(trial_id)
            except UpdateFinishedTrialError:  # another process failed it first
                pass
        if self.failed_trial_callback is not None:
            for trial_id in failed:
                self.failed_trial_callback(study, copy.deepcopy(self.get_trial(trial_id)))


def heartbeat_interval(storage: BaseStorage) -> int | None:
    """The storage's beat interval, None when it keeps no heartbeats."""
    if isinstance(storage, HeartbeatJournalStorage | RDBStorage):
        return storage.get_heartbeat_interval()
    return None


def record_heartbeat(storage: BaseStorage, trial_id: int) -> None:
    """One beat for a running trial (raises UpdateFinishedTrialError once it has finished)."""
    if isinstance(storage, HeartbeatJournalStorage | RDBStorage):
        storage.record_heartbeat(trial_id)


def fail_stale_trials(study: optuna.Study, storage: BaseStorage) -> None:
    """Fail the silent workers' trials of `study` (kept in `storage`) and queue their retries."""
    if isinstance(storage, HeartbeatJournalStorage):
        storage.fail_stale_trials(study)
        return
    with warnings.catch_warnings():  # experimental since Optuna 2.9, still in 5
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def describe(url: str) -> str:
    """The storage URL as it is used in parallel mode (sqlite becomes a journal file)."""
    if url.startswith("sqlite:///"):
        return "journal:" + str(Path(url.removeprefix("sqlite:///")).with_suffix(".journal"))
    return url


def open_storage(cfg: TuneParams, *, fresh: bool = False) -> BaseStorage:
    """The shared storage named by tune.storage, with heartbeats and retries.

    Args:
        cfg: the tune section.
        fresh: start from an empty journal file (the coordinator's first call).
    """
    url = describe(cfg.storage)
    grace = grace_s(cfg)
    with warnings.catch_warnings():  # experimental since 2.8, renamed from the deprecated one
        warnings.simplefilter("ignore", ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=cfg.max_retry)
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        if fresh:
            path.unlink(missing_ok=True)
        return HeartbeatJournalStorage(
            JournalFileBackend(str(path)), cfg.heartbeat_s, grace, retry
        )
    if url.startswith("postgresql:") or url.startswith("postgresql+psycopg:"):
        # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which we do not install.
        raise StorageError(
            f"tune.storage {url.split('@')[-1]!r}: name the driver, postgresql+psycopg2://... "
            "(pip install 'retrain[postgres]')"
        )
    try:
        return RDBStorage(
            url,
            heartbeat_interval=cfg.heartbeat_s,
            grace_period=grace,
            heartbeat_stale_trial_callback=retry,
        )
    except Exception as err:  # a driver missing, a server down: one line, not a traceback
        raise StorageError(f"tune.storage: cannot open {url.split('@')[-1]!r}: {err}") from err


class Heartbeat:
    """Beats for one trial from a daemon thread while the trial runs (a context manager)."""

    def __init__(self, storage: BaseStorage, trial_id: int) -> None:
        self._storage = storage
        self._trial_id = trial_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        interval = heartbeat_interval(self._storage)
        if interval is not None:
            record_heartbeat(self._storage, self._trial_id)
            self._thread = threading.Thread(target=self._beat, args=(interval,), daemon=True)
            self._thread.start()
        return self

    def _beat(self, interval: int) -> None:
        while not self._stop.wait(interval):
            try:
                record_heartbeat(self._storage, self._trial_id)
            except Exception:  # the trial was failed meanwhile: nothing left to keep alive
                return

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def retried_from(trial: FrozenTrial) -> int | None:
    """The number of the failed trial this one retries (None for a first attempt)."""
    return RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)
