"""Processes: whether a pid still exists (one answer for the stack, ingest and the locks)."""

from __future__ import annotations

import os


def pid_exists(pid: int) -> bool:
    """Whether a process `pid` exists (a zombie included; another user's too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just not ours to signal
    return True
