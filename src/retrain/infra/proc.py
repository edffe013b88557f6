"""Processes: whether a pid still exists (one answer for the stack, ingest and the locks),
which processes carry a variable in their environment (what the stack left running), and a
process group recorded in a file, so that a later process can stop what a killed one started."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from retrain.errors import RetrainError
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
    # Where it was recorded, so that a copy of the record is never taken for the original:
    host: str | None = None  # the machine (a folder shared over NFS is read by others)
    boot: str | None = None  # the machine's boot (after a reboot nothing of it runs)
    folder: list[int] | None = None  # the record's folder (st_dev, st_ino): not a copy's


def record_group(path: Path, token: str, pid: int | None = None) -> None:
    """Record a group in `path` (atomically): first its token alone, before it is started (a
    kill in between still leaves the token to find it by), then with its leader's pid."""
    start = None if pid is None else start_time(pid)
    rec = GroupRecord(token, pid, start, socket.gethostname(), _boot_id(), _folder_id(path))
    write_json(path, asdict(rec), sort_keys=False)


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None  # no /proc (macOS)


def _folder_id(path: Path) -> list[int] | None:
    try:
        st = path.parent.stat()
    except OSError:
        return None
    return [st.st_dev, st.st_ino]


def _read_record(path: Path) -> GroupRecord | None:
    """The record in `path`, or None: none there, or one that was corrupt (dropped)."""
    try:
        rec = GroupRecord(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except OSError as err:
        raise RetrainError(f"{path}: cannot read the record of a process group ({err})") from err
    except (ValueError, TypeError):
        # Empty (a power loss before the write reached the disk), not JSON, or other keys: no
        # token or pid to trust, so nothing is signalled; kept, it would block every retrain.
        path.unlink(missing_ok=True)
        return None
    return rec


def _whose(path: Path, rec: GroupRecord) -> Literal["here", "elsewhere", "stale"]:
    """Whether `rec`'s processes are this machine's to stop: "here"; "elsewhere" when it
    was recorded on another machine (the record is kept for it); "stale" when nothing of it
    can run here (a copy of the record, made with its checkout, or an earlier boot's)."""
    if rec.host is not None and rec.host != socket.gethostname():
        return "elsewhere"
    if rec.boot is not None and rec.boot != _boot_id():
        return "stale"
    if rec.folder is not None and rec.folder != _folder_id(path):
        return "stale"  # copied with its checkout (cp -a, a backup): the original's to stop
    return "here"


def _left(rec: GroupRecord, group: int | None) -> list[int]:
    """What is left of a recorded group: every process carrying its token (DVC's stage and its
    children, in whatever session), and the members of `group` (its id, once known to be it)."""
    alive = set(environ_marked(ENV_GROUP_TOKEN, rec.token))
    if group is not None:
        alive |= set(group_members(group))
    return sorted(alive)


def stop_recorded(path: Path, grace: float = 10.0) -> GroupRecord | None:
    """Stop what is left of the group recorded in `path` (SIGTERM, then SIGKILL for what is
    left after `grace`), then remove the record. A record made on another machine is left
    alone (kept for it); a copy of one (its checkout copied), or one from before a reboot, is
    removed without signalling anything.

    Returns:
        The record, if any of its processes was still running; else None.

    Raises:
        RetrainError: the record exists but cannot be read (permissions), naming it.
    """
    rec = _read_record(path)
    if rec is None:
        return None
    whose = _whose(path, rec)
    if whose != "here":
        if whose == "stale":
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
