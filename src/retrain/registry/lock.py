"""One lock for everything that writes the project's data pin, pipeline outputs or registry.

Retrain, ingest, rollback and the monitor's ingest all take the same exclusive lock
(paths.retrain_lock), so a record's data pin is always what its pipeline read: an ingest
that arrives while a retrain runs waits for it. Read-only work (scoring, drift reports,
`retrain runs`, replay in a temporary clone) takes no lock.

`fcntl.flock` belongs to the open file, so the kernel releases it when the holder dies, even
by SIGKILL: a killed holder never leaves a stale lock behind. The file also names its holder
(command, run id, pid, start time): whoever waits says for whom and for how long, at once
and then periodically, and a timeout names the holder.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from retrain.errors import RetrainError


class RetrainBusy(RetrainError):
    """Another command holds the lock and did not finish within the timeout."""


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
) -> Iterator[None]:
    """Hold the lock at `path` for the block; wait up to `timeout_s` for another holder.

    Args:
        path: the lock file (created if needed; never deleted, so its inode stays the lock).
        owner: written into the file (the run id, or the command's own id) for whoever waits.
        timeout_s: 0 fails at once when the lock is taken.
        poll_s: how often to retry while waiting.
        command: what holds the lock (retrain, ingest, rollback, monitor), for the messages.
        on_wait: receives "waiting for ..." lines: when the wait starts, then every
            `report_every_s`; default: standard error.
        report_every_s: how often a waiting command says it still waits.

    Raises:
        RetrainBusy: still held by another process after `timeout_s`, naming that process.
    """
    say = on_wait or _stderr
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        start = time.monotonic()
        deadline = start + timeout_s
        next_report = start
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                info = _info(fd)
                now = time.monotonic()
                if now >= deadline:
                    held_by = info.get("command", "retrain")
                    raise RetrainBusy(
                        f"another {held_by} holds {path} ({_holder(info)}); waited "
                        f"{timeout_s:g}s. Wait for it to finish, or raise "
                        "registry.lock_timeout_s"
                    ) from None
                if now >= next_report:
                    say(
                        f"{command} {owner} waiting for the project lock {path}: held by "
                        f"{info.get('command', 'another command')} ({_holder(info)}); "
                        f"waited {now - start:.0f}s of at most {timeout_s:g}s"
                    )
                    next_report = now + report_every_s
                time.sleep(poll_s)
        waited = time.monotonic() - start
        if waited >= poll_s:
            say(f"{command} {owner} got the project lock {path} after {waited:.0f}s")
        info = {
            "pid": os.getpid(),
            "run_id": owner,
            "command": command,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
