"""Processes: whether a pid still exists (one answer for the stack, ingest and the locks),
which processes carry a variable in their environment (what the stack left running), and a
process group recorded in a file, so that a later process can stop what a killed one started."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from retrain.files import write_json

# Set, to the group's token, in the environment of a recorded group's leader (so its children's).
ENV_GROUP_TOKEN = "RETRAIN_GROUP_TOKEN"


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


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after "(comm)" (the state first), or None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None


def start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot, /proc/<pid>/stat's 22nd field), or None
    when it is gone or a zombie: with its pid, what tells a process from a later one that was
    given the same pid."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] == "Z":
        return None
    return int(fields[19])


def group_members(pgid: int) -> list[int]:
    """Live processes (zombies aside) of the process group `pgid`."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    found = []
    for entry in proc.iterdir():
        fields = _stat_fields(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return sorted(found)


@dataclass(frozen=True)
class GroupRecord:
    """A process group started by a process that may be killed before it can stop it."""

    token: str  # ENV_GROUP_TOKEN's value in the group's environment
    pid: int | None = None  # its leader's pid (= the group's id), once started
    start: int | None = None  # the leader's start_time


def record_group(path: Path, token: str, pid: int | None = None) -> None:
    """Record a group in `path` (atomically): first its token alone, before it is started (a
    kill in between still leaves the token to find it by), then with its leader's pid."""
    start = None if pid is None else start_time(pid)
    write_json(path, asdict(GroupRecord(token, pid, start)), sort_keys=False)


def _left(rec: GroupRecord, group: int | None) -> list[int]:
    """What is left of a recorded group: every process carrying its token (DVC's stage and its
    children, in whatever session), and the members of `group` (its id, once known to be it)."""
    alive = set(environ_marked(ENV_GROUP_TOKEN, rec.token))
    if group is not None:
        alive |= set(group_members(group))
    return sorted(alive)


def stop_recorded(path: Path, grace: float = 10.0) -> GroupRecord | None:
    """Stop what is left of the group recorded in `path` (SIGTERM, then SIGKILL for what is
    left after `grace`), then remove the record.

    Returns:
        The record, if any of its processes was still running; else None.
    """
    try:
        rec = GroupRecord(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        # Empty (a power loss before the write reached the disk), not JSON, or other keys: no
        # token or pid to trust, so nothing is signalled; kept, it would block every retrain.
        path.unlink(missing_ok=True)
        return None
    # The group is the recorded one only while its leader is the same process (its start time:
    # a pid given to a later process is never touched); a group id is not given out again while
    # any member lives, so once the leader is known, its group stays known.
    same = rec.pid is not None and rec.start is not None and start_time(rec.pid) == rec.start
    group = rec.pid if same else None
    found = _left(rec, group)
    alive = found
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if not alive:
            break  # all gone: no second scan, which could meet a reused group id
        for pid in alive:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass  # gone meanwhile, or its pid now another user's process: not ours
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = _left(rec, group)
    path.unlink(missing_ok=True)
    return rec if found else None
