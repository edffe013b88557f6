"""`retrain stack down` with a retrain in flight: the run is cancelled, every process the stack
started (the flow run's and its tune workers, in their own sessions) is gone, and the
workspace is as the run found it."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from retrain.orchestration import stack
from tests.conftest import copy_repo

# engines: a real stack with parallel tuning workers (make test-engines), which keeps make test
# within its 10 minutes.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.engines]

# A retrain slow enough to be caught tuning, with two tune worker processes.
START = r"""
from prefect.deployments import run_deployment
overrides = {"tune.n_trials": 40, "tune.workers": 2, "tune.max_epochs": 60, "tune.patience": 60}
run = run_deployment("retrain/retrain", parameters={"overrides": overrides}, timeout=0)
print(run.id)
"""

TAG = "RETRAIN_TEST_STACK_TAG"


def _tagged(tag: str) -> dict[int, str]:
    """Live processes (not zombies) whose environment carries TAG=`tag`, with their command.

    Set by the test before `up`, so it marks whatever the stack starts, on any code."""
    needle = f"{TAG}={tag}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in environ and state != "Z":
            found[int(entry.name)] = cmd
    return found


def _workspace(repo: Path) -> tuple[str, str]:
    git = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True)
    dvc = subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=repo, capture_output=True)
    return git.stdout.decode(), dvc.stdout.decode()


def test_stack_down_cancels_a_running_retrain_and_leaves_nothing(
    tmp_path, trained_repo, monkeypatch
):
    repo = copy_repo(trained_repo, tmp_path / "repo")
    tag = uuid.uuid4().hex
    monkeypatch.setenv(TAG, tag)  # inherited by everything the stack starts
    monkeypatch.setenv("PREFECT_WORKER_QUERY_SECONDS", "2")  # the run starts sooner
    before = _workspace(repo)
    # The command, not stack.up: its processes must not be this test's children (a child that
    # exited stays a zombie until its parent reaps it, and `down` runs in another process).
    cli = [sys.executable, "-m", "retrain.cli", "stack"]
    port = str(stack.free_port())
    up = subprocess.run([*cli, "up", "--port", port], cwd=repo, capture_output=True, text=True)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        api_url = json.loads(stack.state_file(repo).read_text())["api_url"]
        env = {**os.environ, "PREFECT_API_URL": api_url}
        started = subprocess.run(
            [sys.executable, "-c", START], cwd=repo, env=env, capture_output=True, text=True
        )
        assert started.returncode == 0, started.stderr[-3000:]
        run_id = started.stdout.split()[-1]
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            serving = [c for c in _tagged(tag).values() if " task serve " in c]
            if len(serving) == 2:
                break
            time.sleep(1)
        assert len(serving) == 2, _tagged(tag)
        time.sleep(3)  # the trials are under way
    finally:
        down = subprocess.run([*cli, "down"], cwd=repo, capture_output=True, text=True)
    assert down.returncode == 0, down.stdout + down.stderr
    # Nothing the stack started is left: not the flow run, not its tune workers.
    assert _tagged(tag) == {}, down.stdout
    # The server recorded the run as Cancelled (its SQLite database: the server is down).
    with sqlite3.connect(repo / ".prefect" / "prefect.db") as db:
        rows = db.execute("SELECT name, state_type FROM flow_run WHERE id = ?", (run_id,))
        ((name, state),) = rows.fetchall()
    assert state == "CANCELLED", down.stdout
    # The user is told which run was interrupted (by the name the flow gave it).
    assert name.startswith("retrain-manual-"), name
    assert f"cancelled {name} ({run_id}): the run was interrupted" in down.stdout, down.stdout
    # ... and the workspace is as the run found it: params.yaml, dvc.lock, every output.
    assert _workspace(repo) == before, down.stdout


def _state(repo: Path, run_id: str) -> tuple[str, str, str]:
    """The run's name, state type and state message, read from the server's SQLite database."""
    with sqlite3.connect(repo / ".prefect" / "prefect.db") as db:
        rows = db.execute(
            "SELECT flow_run.name, flow_run.state_type, flow_run_state.message FROM flow_run "
            "LEFT JOIN flow_run_state ON flow_run_state.id = flow_run.state_id "
            "WHERE flow_run.id = ?",
            (run_id,),
        ).fetchall()
    ((name, state, message),) = rows
    return name, state, message or ""


def test_a_run_left_running_by_a_dead_server_is_crashed_by_the_next_up(
    tmp_path, trained_repo, monkeypatch
):
    # The server dies first (SIGKILL, the OOM killer), then `stack down` stops the run's
    # processes but cannot tell the server: its database still says RUNNING, and the UI of the
    # next `stack up` would show a retrain that never ends. That `up` marks it Crashed.
    repo = copy_repo(trained_repo, tmp_path / "repo")
    monkeypatch.setenv("PREFECT_WORKER_QUERY_SECONDS", "2")  # the run starts sooner
    cli = [sys.executable, "-m", "retrain.cli", "stack"]
    first = [*cli, "up", "--port", str(stack.free_port())]
    up = subprocess.run(first, cwd=repo, capture_output=True, text=True)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        recorded = json.loads(stack.state_file(repo).read_text())
        env = {**os.environ, "PREFECT_API_URL": recorded["api_url"]}
        started = subprocess.run(
            [sys.executable, "-c", START], cwd=repo, env=env, capture_output=True, text=True
        )
        assert started.returncode == 0, started.stderr[-3000:]
        run_id = started.stdout.split()[-1]
        deadline = time.monotonic() + 120
        while _state(repo, run_id)[1] != "RUNNING":
            assert time.monotonic() < deadline, _state(repo, run_id)
            time.sleep(1)
        os.killpg(recorded["server_pid"], signal.SIGKILL)
        down = subprocess.run([*cli, "down"], cwd=repo, capture_output=True, text=True)
        assert down.returncode == 0, down.stdout + down.stderr
        assert "the server is not running" in down.stdout, down.stdout
        assert _state(repo, run_id)[1] == "RUNNING"  # what the UI would show for ever
        again = [*cli, "up", "--port", str(stack.free_port())]
        up = subprocess.run(again, cwd=repo, capture_output=True, text=True)
        assert up.returncode == 0, up.stdout + up.stderr
        name, state, message = _state(repo, run_id)  # what the new UI shows
    finally:
        subprocess.run([*cli, "down"], cwd=repo, capture_output=True)
    assert (state, message) == ("CRASHED", stack.CRASHED), up.stdout
    assert f"crashed {name} ({run_id}): {stack.CRASHED}" in up.stdout, up.stdout
