"""One lock for everything that writes the project's data pin, pipeline outputs or registry.

Retrain, ingest, rollback and the monitor's ingest all take the same exclusive lock, so a
record's data pin is always what its pipeline read: an ingest that arrives while a retrain
runs waits for it. Read-only work (scoring, drift reports, `retrain runs`, replay in a
temporary clone) takes no lock.

Where the lock lives depends on where the work can run:
- With a Prefect server configured (PREFECT_API_URL: `retrain stack up`, or any server the
  flows run against), the server holds it: a global concurrency limit of one slot
  (LIMIT), taken with a lease that the holder renews while it works. Task workers and
  machines that share the server share the lock; a holder that dies, even by SIGKILL, stops
  renewing and its slot is freed when the lease expires (the server's repossessor). The
  file lock below is taken as well, inside it: a command started without PREFECT_API_URL on
  the same machine (a shell's `retrain ingest` beside the stack) still waits.
- Without one (the embedded default: each process starts its own ephemeral server, which
  shares nothing and never expires leases), an `fcntl.flock` on paths.retrain_lock. It
  belongs to the open file, so the kernel releases it when the holder dies.

Either way the holder is named (command, run id, pid, start time: in the file, or in the
Prefect variable HOLDER beside the limit): whoever waits says for whom and for how long, at
once and then periodically, and a timeout names the holder.

A retrain runs `dvc repro` in a process group of its own and records it beside the lock
(`dvc_record`). Killed outright, it frees the lock but not that group, whose stage goes on
writing outputs and dvc.lock (and holds DVC's own lock). So whoever takes the lock next,
ingest, rollback and canary as well as the next retrain, stops that group first.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retrain.errors import RetrainError
from retrain.infra.proc import stop_recorded

# One Prefect server serves one project (`retrain stack up` starts one per checkout), so
# one name suffices; tests pass their own.
LIMIT = "retrain-project-lock"
# The server refuses leases under 60 s. A holder renews at 75% of the lease, so a renewal
# may be late by 30 s (a loaded machine) before the lock is lost; a killed holder's slot
# is free about this long (plus the repossessor's loop, 15 s by default) after it died.
LEASE_S = 120.0


class RetrainBusy(RetrainError):
    """Another command holds the lock and did not finish within the timeout."""


def server_url() -> str | None:
    """The Prefect server the lock is held on (None: the embedded default, no server)."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


def _info(fd: int) -> dict[str, object]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        found = json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _holder(info: dict[str, object]) -> str:
    if not info:
        return "an unknown process"
    return f"pid {info.get('pid')}, run {info.get('run_id')}, since {info.get('since')}"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class _Wait:
    """One wait for the lock: the shared deadline, and what a waiting command says."""

    owner: str
    command: str
    timeout_s: float
    poll_s: float
    report_every_s: float
    say: Callable[[str], None]
    start: float = field(default_factory=time.monotonic)
    next_report: float = 0.0
    waited: bool = False  # found the lock taken at least once

    def busy(self, where: str, info: dict[str, object]) -> None:
        """The lock is taken: fail past the deadline, else say so (now and then) and sleep."""
        now, self.waited = time.monotonic(), True
        if now >= self.start + self.timeout_s:
            raise RetrainBusy(
                f"another {info.get('command', 'retrain')} holds {where} ({_holder(info)}); "
                f"waited {self.timeout_s:g}s. Wait for it to finish, or raise "
                "registry.lock_timeout_s"
            )
        if now >= self.next_report:
            self.say(
                f"{self.command} {self.owner} waiting for the project lock {where}: held by "
                f"{info.get('command', 'another command')} ({_holder(info)}); "
                f"waited {now - self.start:.0f}s of at most {self.timeout_s:g}s"
            )
            self.next_report = now + self.report_every_s
        time.sleep(self.poll_s)

    def got(self, where: str) -> None:
        waited, said = time.monotonic() - self.start, self.waited
        self.waited = False  # the file lock inside the server's reports its own wait
        if said:  # (a slow server's round trips are no wait for another holder)
            self.say(
                f"{self.command} {self.owner} got the project lock {where} after {waited:.0f}s"
            )

    def holder(self) -> dict[str, object]:
        """What the lock's holder says of itself, for whoever waits."""
        return {
            "pid": os.getpid(),
            "run_id": self.owner,
            "command": self.command,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }


@contextmanager
def exclusive(
    path: Path,
    owner: str,
    timeout_s: float,
    poll_s: float = 0.5,
    *,
    command: str = "retrain",
    on_wait: Callable[[str], None] | None = None,
    report_every_s: float = 30.0,
    limit: str = LIMIT,
    lease_s: float = LEASE_S,
) -> Iterator[None]:
    """Hold the project lock for the block; wait up to `timeout_s` for another holder.

    Args:
        path: the lock file (created if needed; never deleted, so its inode stays the lock).
        owner: written into the file (the run id, or the command's own id) for whoever waits.
        timeout_s: 0 fails at once when the lock is taken.
        poll_s: how often to retry while waiting.
        command: what holds the lock (retrain, ingest, rollback, monitor), for the messages.
        on_wait: receives "waiting for ..." lines: when the wait starts, then every
            `report_every_s`; default: standard error.
        report_every_s: how often a waiting command says it still waits.
        limit: the Prefect global concurrency limit that is the lock when a server is
            configured (created with one slot if missing).
        lease_s: the lease on the server's slot (at least 60), renewed while the block runs.

    Raises:
        RetrainBusy: still held by another process after `timeout_s`, naming that process.
        RetrainError: a Prefect server is configured but refuses or cannot be reached.
    """
    url = server_url()  # first: importing Prefect's settings is no time spent waiting
    wait = _Wait(owner, command, timeout_s, poll_s, report_every_s, on_wait or _stderr)
    with ExitStack() as stack:
        if url is not None:
            stack.enter_context(_server_lock(url, limit, lease_s, wait))
        stack.enter_context(_file_lock(path, wait))
        _stop_orphan(path, wait.say)
        yield


def state_folder(path: Path) -> Path:
    """Where a retrain holding the lock `path` keeps what a kill would leave behind: its saved
    pipeline state (orchestration.failure) and the record of its `dvc repro`."""
    return path.with_name(path.name + ".restore")


DVC_RECORD = "dvc-group.json"


def dvc_record(path: Path) -> Path:
    """Where a retrain holding the lock `path` records the `dvc repro` it runs (`dvc.run`'s
    `record`): what the next holder stops if the retrain was killed outright."""
    return state_folder(path) / DVC_RECORD


def _stop_orphan(path: Path, say: Callable[[str], None]) -> None:
    """Stop the `dvc repro` a killed retrain left running (nothing when none is recorded).
    Only the lock's holder runs one, so a recorded group alive now has lost its retrain."""
    stopped = stop_recorded(dvc_record(path))
    if stopped is not None:
        # A kill between DVC's start and its pid's record leaves no pid to name.
        pid = "" if stopped.pid is None else f" (pid {stopped.pid})"
        say(f"stopped the dvc repro{pid} a killed retrain left running")


@contextmanager
def _file_lock(path: Path, wait: _Wait) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                wait.busy(str(path), _info(fd))
        wait.got(str(path))
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(wait.holder()).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder_variable(limit: str) -> str:
    return limit.replace("-", "_") + "_holder"


def _lease_holder() -> Any:
    """This flow or task run, as the lease's holder (the UI shows it); None outside a run."""
    from prefect.client.schemas.objects import ConcurrencyLeaseHolder
    from prefect.runtime import flow_run, task_run

    if task_run.id:
        return ConcurrencyLeaseHolder(type="task_run", id=task_run.id)
    if flow_run.id:
        return ConcurrencyLeaseHolder(type="flow_run", id=flow_run.id)
    return None


def _is_taken(err: BaseException) -> bool:
    """The server said 423 Locked: every slot is held (any other error is an error)."""
    from prefect.exceptions import PrefectHTTPStatusError  # what Prefect's client raises

    cause = err.__cause__
    return isinstance(cause, PrefectHTTPStatusError) and cause.response.status_code == 423


def _taken_now(limit: str) -> bool:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        found = client.read_global_concurrency_limit_by_name(limit)
    return found.active_slots >= found.limit


@contextmanager
def _server_lock(url: str, limit: str, lease_s: float, wait: _Wait) -> Iterator[None]:
    from prefect.client.orchestration import get_client
    from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.variables import Variable

    where = f"{limit} (Prefect concurrency limit at {url})"
    try:
        with get_client(sync_client=True) as client:
            client.upsert_global_concurrency_limit_by_name(limit, 1)
    except ObjectAlreadyExists:
        pass  # created by another process between the read and the create
    except Exception as err:  # the server is down or refuses: say which, in one line
        raise RetrainError(f"cannot set up the project lock {where}: {err}") from err
    name, holder = _holder_variable(limit), _lease_holder()
    with ExitStack() as stack:
        while True:
            if _taken_now(limit):  # a refused attempt is logged as an error: look first
                found = Variable.get(name, default=None)
                wait.busy(where, found if isinstance(found, dict) else {})
                continue
            try:  # one attempt (max_retries=0): the wait, its messages and deadline are ours
                stack.enter_context(
                    concurrency(
                        limit,
                        max_retries=0,
                        lease_duration=lease_s,
                        strict=True,
                        holder=holder,
                        raise_on_lease_renewal_failure=True,  # a lost lock stops the work
                    )
                )
                break
            except ConcurrencySlotAcquisitionError as err:
                if not _is_taken(err):
                    raise RetrainError(f"cannot take the project lock {where}: {err}") from err
                found = Variable.get(name, default=None)
                wait.busy(where, found if isinstance(found, dict) else {})
        wait.got(where)
        Variable.set(name, wait.holder(), overwrite=True)
        # Cleared before the slot is released (LIFO), so it never erases the next holder's.
        stack.callback(Variable.unset, name)
        yield
