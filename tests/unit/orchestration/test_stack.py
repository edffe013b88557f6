"""`retrain stack down` stops what `up` started, the whole process group, and whatever carries
the stack's id, and nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from retrain.infra.proc import environ_marked
from retrain.orchestration import stack


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_an_exited_child_is_not_alive_and_gets_reaped():
    proc = subprocess.Popen(["true"])
    time.sleep(0.5)  # exited, not reaped: a zombie until someone waits for it
    assert not stack._alive(proc.pid)
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)  # reaped: gone from the process table


def test_stops_the_group_even_when_its_leader_already_exited():
    # A worker that died leaves its children (flow runs) in its group: they must stop too.
    leader = subprocess.Popen(["bash", "-c", "sleep 60 & exit 0"], start_new_session=True)
    time.sleep(0.5)
    assert _group_exists(leader.pid)  # the orphaned sleep still holds the group
    stack._stop_group(leader.pid, grace=5)
    assert not _group_exists(leader.pid)
    with pytest.raises(ProcessLookupError):
        os.kill(leader.pid, 0)


def test_leaves_a_live_process_that_is_not_prefect_alone():
    # The recorded pid may belong to something else by now: never signal it.
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        stack._stop_group(other.pid, grace=1)
        assert other.poll() is None
    finally:
        os.killpg(other.pid, signal.SIGKILL)
        other.wait()


def test_stops_every_process_with_the_stack_id_and_no_other():
    # A flow run and its tune workers run in sessions of their own: no group holds them, the
    # stack's id in their environment does. A process without it is never signalled.
    stack_id = f"test{os.getpid()}"
    nested = (
        "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
        "'import time; time.sleep(60)'], start_new_session=True); time.sleep(60)"
    )
    env = {**os.environ, stack.ENV_STACK_ID: stack_id}
    marked = subprocess.Popen([sys.executable, "-c", nested], env=env, start_new_session=True)
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(environ_marked(stack.ENV_STACK_ID, stack_id)) < 2:
            assert time.monotonic() < deadline, "the nested process never started"
            time.sleep(0.1)
        stopped = stack.stop_marked(stack_id, grace=5)
        marked.wait(timeout=5)
        assert marked.pid in [pid for pid, _ in stopped] and len(stopped) == 2
        assert all(command.startswith(sys.executable) for _, command in stopped)
        assert environ_marked(stack.ENV_STACK_ID, stack_id) == []
        assert other.poll() is None
    finally:
        os.killpg(other.pid, signal.SIGKILL)
        other.wait()
