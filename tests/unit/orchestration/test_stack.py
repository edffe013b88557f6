"""`retrain stack down` stops what `up` started, the whole process group, and whatever carries
the stack's id, and nothing else."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid

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


def _run(infrastructure_pid: str | None = None):
    from prefect.client.schemas.objects import FlowRun

    return FlowRun(flow_id=uuid.uuid4(), infrastructure_pid=infrastructure_pid)


def test_only_runs_with_no_process_here_and_not_another_hosts_are_orphaned():
    # Bare pid (this Prefect's process worker) or none yet (pending): this machine's, since the
    # stack's own SQLite is served by this machine only; "<host>:<pid>" (older workers) of
    # another host: its process is out of sight here, so left alone.
    here = socket.gethostname()
    mine, pending, elsewhere, on_here, live = (
        _run("4242"),
        _run(),
        _run("other-host:4242"),
        _run(f"{here}:4242"),
        _run("4243"),
    )
    runs = [mine, pending, elsewhere, on_here, live]
    gone = stack.orphaned(runs, here, lambda run_id: run_id == str(live.id))
    assert gone == [mine, pending, on_here]


def test_a_shared_database_is_not_checked():
    assert not stack._shared_database({})
    assert not stack._shared_database(
        {"PREFECT_API_DATABASE_CONNECTION_URL": "sqlite+aiosqlite:////x/prefect.db"}
    )
    assert stack._shared_database(
        {"PREFECT_API_DATABASE_CONNECTION_URL": "postgresql+asyncpg://u:p@db:5432/prefect"}
    )
    assert stack._shared_database(
        {"PREFECT_SERVER_DATABASE_CONNECTION_URL": "postgresql+asyncpg://db/prefect"}
    )
    assert stack._shared_database({"PREFECT_SERVER_DATABASE_DRIVER": "postgresql+asyncpg"})


class _Pages:
    """A client whose server holds `n` runs in flight, returned a page (`limit`) at a time."""

    def __init__(self, n: int) -> None:
        self.runs = list(range(n))

    def read_flow_runs(self, *, limit: int | None = None, offset: int = 0, **_: object) -> list:
        return self.runs[offset : offset + (200 if limit is None else min(limit, 200))]


@pytest.mark.parametrize("n", [0, 199, 200, 450])
def test_every_run_in_flight_is_read_past_the_first_page(n):
    assert stack._read_in_flight(_Pages(n)) == list(range(n))  # type: ignore[arg-type]
