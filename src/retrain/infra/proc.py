"""Processes: whether a pid still exists (one answer for the stack, ingest and the locks), and
which processes carry a variable in their environment (what the stack left running)."""

from __future__ import annotations

import os
from pathlib import Path


def pid_exists(pid: int) -> bool:
    """Whether a process `pid` exists (a zombie included; another user's too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just not ours to signal
    return True


def environ_marked(name: str, value: str) -> list[int]:
    """Live processes (zombies aside) whose environment sets `name` to `value`, this one aside.

    Read from /proc/<pid>/environ, the environment a process was started with, which its
    children inherit whatever session they start: how the stack finds what it left running.
    Empty where there is no /proc (macOS), or for another user's processes (unreadable).
    """
    needle = f"{name}={value}".encode()
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if needle in environ and state != "Z":  # a zombie has exited: nothing to stop
            found.append(int(entry.name))
    return sorted(found)


def command_head(pid: int, width: int = 80) -> str:
    """The first `width` characters of `pid`'s command line ("" once it is gone)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return cmdline.replace(b"\0", b" ").decode(errors="replace").strip()[:width]
