"""One retrain at a time: an exclusive lock on a file, held for the whole retrain.

`fcntl.flock` belongs to the open file, so the kernel releases it when the holder dies, even
by SIGKILL: a killed retrain never leaves a stale lock behind. The file also names its
holder (pid, run id, start time) for the message the second retrain prints.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from retrain.errors import RetrainError


class RetrainBusy(RetrainError):
    """Another retrain holds the lock and did not finish within the timeout."""


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        return "an unknown process"
    return f"pid {info.get('pid')}, run {info.get('run_id')}, since {info.get('since')}"


@contextmanager
def exclusive(path: Path, owner: str, timeout_s: float, poll_s: float = 0.5) -> Iterator[None]:
    """Hold the lock at `path` for the block; wait up to `timeout_s` for another holder.

    Args:
        path: the lock file (created if needed; never deleted, so its inode stays the lock).
        owner: written into the file (the run id) for whoever waits.
        timeout_s: 0 fails at once when the lock is taken.
        poll_s: how often to retry while waiting.

    Raises:
        RetrainBusy: still held by another process after `timeout_s`, naming that process.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RetrainBusy(
                        f"another retrain holds {path} ({_holder(fd)}); waited {timeout_s:g}s. "
                        "Wait for it to finish, or raise registry.lock_timeout_s"
                    ) from None
                time.sleep(poll_s)
        info = {
            "pid": os.getpid(),
            "run_id": owner,
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
