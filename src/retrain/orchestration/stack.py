"""The local Prefect stack: server (SQLite) on loopback, a process work pool and worker, and
every deployment from prefect.yaml, plus a static HTTP server on loopback for the per-run
reports the UI links to (paths.run_reports). `up` records what it started; `down` stops
exactly that: it cancels the runs in flight, stops the worker, server and reports server, then
whatever they left running. Prefect's worker starts each flow run in a session of its own, and
a run's tune workers have theirs, so no process group holds them all: every process of the
stack carries the stack's id in its environment (ENV_STACK_ID, inherited down to the tune
workers and DVC's stages), and `down` finds survivors by it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain.errors import RetrainError
from retrain.files import write_json
from retrain.infra.proc import command_head, environ_marked, pid_exists
from retrain.orchestration.notify import ENV_WEBHOOK
from retrain.orchestration.reports import ENV_URL as ENV_REPORTS_URL

if TYPE_CHECKING:  # Prefect is imported where it is used: `retrain --help` stays fast
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun

POOL = "local-process"
# Every process the stack starts carries this variable, set to the stack's id (one per `up`).
ENV_STACK_ID = "RETRAIN_STACK_ID"


class StackError(RetrainError):
    """The stack could not be started or stopped."""


@dataclass(frozen=True)
class Stack:
    api_url: str
    ui_url: str
    server_pid: int
    worker_pid: int
    home: str
    # The per-run reports server (absent from a state file written before it existed).
    reports_url: str = ""
    reports_pid: int = 0
    # The value of ENV_STACK_ID in its processes' environment (absent from older state files).
    stack_id: str = ""


def state_file(repo: Path) -> Path:
    return repo / ".prefect" / "stack.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prefect() -> list[str]:
    return [str(Path(sys.executable).parent / "prefect")]


def stack_env(
    repo: Path, api_url: str, reports_url: str = "", stack_id: str = ""
) -> dict[str, str]:
    """Environment for every process of the stack: project-local home, no telemetry, and the
    stack's id (`down` finds what is left of the stack by it)."""
    env = dict(os.environ)
    if reports_url:
        env[ENV_REPORTS_URL] = reports_url  # flows link their reports there
    if stack_id:
        env[ENV_STACK_ID] = stack_id
    env.update(
        PREFECT_HOME=str(repo / ".prefect"),
        PREFECT_API_URL=api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_CLI_PROMPT="false",
        GX_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        RETRAIN_PROJECT_DIR=str(repo),
        # The worker's flow runs and DVC's `python -m` stages must use this interpreter.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


def _wait_healthy(api_url: str, server: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise StackError(
                f"prefect server exited with {server.returncode}; see .prefect/server.log"
            )
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise StackError(f"prefect server not healthy at {api_url} after {timeout:.0f}s")


def _wait_serving(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"reports server exited with {proc.returncode}; see .prefect/")
        try:
            with urllib.request.urlopen(url + "/", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise StackError(f"reports server not answering at {url} after {timeout:.0f}s")


def start_reports_server(
    folder: Path, port: int, log: Path, timeout: float = 30.0, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Serve `folder` read-only on 127.0.0.1:`port` (its own process group, like the rest)."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(folder),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    try:
        _wait_serving(f"http://127.0.0.1:{port}", proc, timeout)
    except BaseException:
        _stop_group(proc.pid)
        raise
    return proc


def _run(args: list[str], repo: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise StackError(f"{' '.join(args[1:4])} failed: " + " | ".join(tail))


def _spawn(cmd: list[str], repo: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A long-running Prefect process logging to `log`, in its own process group (so `down`
    stops it and its children)."""
    return subprocess.Popen(
        cmd,
        cwd=repo,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _deploy(repo: Path, env: dict[str, str], webhook_url: str | None) -> None:
    """Every deployment of prefect.yaml and, given a webhook, the notifications of
    automations.yaml (run failed, drift tripped, promoted, batch rejected)."""
    _run([*_prefect(), "--no-prompt", "deploy", "--all"], repo, env)
    hook = webhook_url or os.environ.get(ENV_WEBHOOK, "")
    if hook:
        _run([sys.executable, "-m", "retrain.orchestration.notify", str(repo), hook], repo, env)


def _start_worker(repo: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """The work pool (created afresh) and its one process worker."""
    _run([*_prefect(), "work-pool", "create", POOL, "--type", "process", "--overwrite"], repo, env)
    return _spawn(
        [*_prefect(), "worker", "start", "--pool", POOL, "--name", "retrain-local"], repo, env, log
    )


def up(
    repo: Path,
    port: int | None = None,
    timeout: float = 90.0,
    reports_port: int | None = None,
    webhook_url: str | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> Stack:
    """Start the reports server, Prefect server, work pool, worker and deployments, and the
    notifications of automations.yaml when a webhook URL is given (or RETRAIN_WEBHOOK_URL);
    refuse if a stack is recorded.

    Args:
        say: told one line per run a previous stack left in flight, marked Crashed.
    """
    from retrain.config import load_params_at

    repo = repo.resolve()
    if state_file(repo).exists():
        raise StackError(f"{state_file(repo)} exists: a stack is up (run `retrain stack down`)")
    home = repo / ".prefect"
    home.mkdir(exist_ok=True)
    port = port or free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    reports_port = reports_port or free_port()
    reports_url = f"http://127.0.0.1:{reports_port}"
    env = stack_env(repo, api_url, reports_url, stack_id=uuid.uuid4().hex)
    reports = start_reports_server(
        load_params_at(repo).paths.run_reports, reports_port, home / "reports.log", env=env
    )
    server = _spawn(
        [*_prefect(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        repo,
        env,
        home / "server.log",
    )
    worker = None
    try:
        _wait_healthy(api_url, server, timeout)
        _crash_left_in_flight(api_url, say)  # before a worker of this stack takes any run
        worker = _start_worker(repo, env, home / "worker.log")
        _deploy(repo, env, webhook_url)
    except BaseException:
        for proc in (worker, server, reports):
            if proc is not None:
                _stop_group(proc.pid)
        raise
    stack = Stack(
        api_url,
        f"http://127.0.0.1:{port}",
        server.pid,
        worker.pid,
        str(home),
        reports_url=reports_url,
        reports_pid=reports.pid,
        stack_id=env[ENV_STACK_ID],
    )
    write_json(state_file(repo), asdict(stack), sort_keys=False)
    return stack


def _reap(pid: int) -> None:
    """Collect `pid`'s exit status if it is our child (`up` and `down` in one process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _alive(pid: int) -> bool:
    """Whether `pid` still runs. A zombie (exited, not yet reaped) does not: it holds no
    resources, and its cmdline is empty, so it could not be recognised as ours anyway."""
    _reap(pid)
    if not pid_exists(pid):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): os.kill said it exists
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"  # the state follows "(comm)"


def _is_ours(pid: int) -> bool:
    """Whether `pid` runs Prefect or the reports server (what `up` starts)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return True  # no /proc (macOS): trust the recorded pid
    return b"prefect" in cmdline or b"http.server" in cmdline


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group `pgid` is left (the leader reaped first if ours)."""
    _reap(pgid)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_group(pid: int, grace: float = 15.0) -> None:
    """Stop the process group `up` started with leader `pid`: SIGTERM, then SIGKILL.

    The whole group, even when its leader has already exited: a worker that died leaves its
    flow-run processes behind. A group id stays taken while any member lives, so a live
    group with this id is ours; a live *process* with this pid that is not Prefect is not.
    """
    if _alive(pid) and not _is_ours(pid):
        return  # the pid now belongs to something we did not start
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if not _group_alive(pid):
            return
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)


# Prefect's worker sets it, to the run's id, in the environment of each flow run it starts.
ENV_FLOW_RUN_ID = "PREFECT__FLOW_RUN_ID"
CRASHED = "the stack was stopped while its server was down"


def crash_orphaned_runs(api_url: str) -> list[tuple[str, str]]:
    """Set Crashed every flow run of the stack's work pool that is pending, running or
    cancelling, but whose process is gone (no process here carries its id): what a `down` with
    its server already dead leaves, since it stops the processes but cannot tell the server.

    Done by the next `up` (its server just started, before its worker takes any run), not by
    that `down`: `down` would have to start a server only to write the states (or write
    Prefect's private database), and the state is wrong only while no server shows it. The
    server listens on loopback only and keeps its own SQLite file, so a run's process is on
    this machine or nowhere; with a shared database (PostgreSQL) nothing is checked.

    Returns:
        (name, id) of each run set Crashed.
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Crashed

    if _shared_database(os.environ):
        return []
    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        gone = orphaned(_read_in_flight(client), socket.gethostname(), _has_process)
        for run in gone:
            client.set_flow_run_state(run.id, Crashed(message=CRASHED), force=True)
    return [(r.name, str(r.id)) for r in gone]


# Where Prefect reads the server's database (either name; a driver alone, with host and
# password variables, also points it at PostgreSQL).
_DATABASE_URL = ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL")
_DATABASE_DRIVER = ("PREFECT_SERVER_DATABASE_DRIVER", "PREFECT_API_DATABASE_DRIVER")


def _shared_database(env: Mapping[str, str]) -> bool:
    """Whether the stack's server would use a database other machines may share (PostgreSQL):
    its runs may then be another machine's, whose processes no scan here can see.

    Checked on the whole database, not per run: Prefect's process worker records a run's
    `infrastructure_pid` as the bare pid in this Prefect (older workers wrote
    "<hostname>:<pid>"), and a run still pending has none, so a run cannot be told to be this
    machine's by its own fields. The stack's own SQLite file (the default, in PREFECT_HOME)
    is only ever served by this machine's server, so every run in it is this machine's.
    """
    urls = [env.get(name, "") for name in _DATABASE_URL]
    drivers = [env.get(name, "") for name in _DATABASE_DRIVER]
    return any(u and not u.startswith("sqlite") for u in urls) or any(
        d.startswith("postgresql") for d in drivers
    )


def orphaned(runs: Iterable[FlowRun], host: str, alive: Callable[[str], bool]) -> list[FlowRun]:
    """The runs among `runs` whose process is gone: none `alive` carries its id. A run that an
    older worker marked as another host's ("<host>:<pid>") is left alone: its process is
    there, out of this machine's sight."""
    gone = []
    for run in runs:
        where, sep, _ = (run.infrastructure_pid or "").rpartition(":")
        if sep and where != host:
            continue
        if not alive(str(run.id)):
            gone.append(run)
    return gone


def _has_process(run_id: str) -> bool:
    return bool(environ_marked(ENV_FLOW_RUN_ID, run_id))


# `read_flow_runs` returns one page (the server's default limit, 200): read them all.
_PAGE = 200


def _read_in_flight(client: SyncPrefectClient) -> list[FlowRun]:
    """Every run of the work pool pending, running or cancelling, page by page."""
    runs: list[FlowRun] = []
    while True:
        page = client.read_flow_runs(**_in_flight(), limit=_PAGE, offset=len(runs))
        runs.extend(page)
        if len(page) < _PAGE:
            return runs


def _crash_left_in_flight(api_url: str, say: Callable[[str], None]) -> None:
    try:
        for name, run_id in crash_orphaned_runs(api_url):
            say(f"crashed {name} ({run_id}): {CRASHED}")
    except Exception as err:  # the stack still comes up; the UI shows those runs as they were
        say(f"could not check the runs left in flight ({type(err).__name__}: {err})")


def _in_flight() -> dict[str, Any]:
    """`read_flow_runs` filters: the work pool's runs pending, running or cancelling."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        WorkPoolFilter,
        WorkPoolFilterName,
    )
    from prefect.client.schemas.objects import StateType

    live = [StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]
    return {
        "flow_run_filter": FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=live))
        ),
        "work_pool_filter": WorkPoolFilter(name=WorkPoolFilterName(any_=[POOL])),
    }


def cancel_runs(api_url: str, wait_s: float = 60.0) -> list[tuple[str, str]]:
    """Cancel every flow run of the stack's work pool that is pending or running, as `prefect
    flow-run cancel` does (a Cancelling state: the worker stops the run's process, and the
    flow restores the workspace); wait up to `wait_s` for each to end. A run still not final
    then (its worker gone, or never started) is set Cancelled, so the record says so.

    Returns:
        (name, id) of each run cancelled.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Cancelled, Cancelling

    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        runs = _read_in_flight(client)
        for run in runs:
            client.set_flow_run_state(run.id, Cancelling(message="retrain stack down"))
        ids = FlowRunFilter(id=FlowRunFilterId(any_=[r.id for r in runs]))
        deadline = time.monotonic() + wait_s
        left = runs
        while left and time.monotonic() < deadline:
            time.sleep(1.0)
            left = [r for r in client.read_flow_runs(flow_run_filter=ids) if not _final(r)]
        for run in left:
            message = "retrain stack down: its process was stopped"
            client.set_flow_run_state(run.id, Cancelled(message=message), force=True)
    return [(r.name, str(r.id)) for r in runs]


def _final(run: Any) -> bool:
    return run.state is not None and run.state.is_final()


def stop_marked(stack_id: str, grace: float = 10.0) -> list[tuple[int, str]]:
    """Stop every process left with this stack's id in its environment (SIGTERM, then
    SIGKILL); never one without it.

    Returns:
        (pid, command head) of each process it had to stop.
    """
    if not stack_id:
        return []  # a stack recorded before ids: its processes carry none
    found = [(pid, command_head(pid)) for pid in environ_marked(ENV_STACK_ID, stack_id)]
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        alive = environ_marked(ENV_STACK_ID, stack_id)
        for pid in alive:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            time.sleep(0.2)
            alive = environ_marked(ENV_STACK_ID, stack_id)
    return found


def down(repo: Path, say: Callable[[str], None] = lambda _: None) -> Stack | None:
    """Cancel the runs in flight, stop the worker, the server and the reports server that
    `up` recorded, then whatever the stack left running; None if none was recorded.

    Args:
        say: told one line per run cancelled and per leftover process stopped.
    """
    path = state_file(repo.resolve())
    if not path.exists():
        return None
    stack = Stack(**json.loads(path.read_text()))
    if _alive(stack.server_pid):
        try:
            for name, run_id in cancel_runs(stack.api_url):
                say(f"cancelled {name} ({run_id}): the run was interrupted")
        except Exception as err:  # a server that does not answer: its runs are stopped below
            say(f"could not cancel the runs in flight ({type(err).__name__}: {err})")
    else:
        say(
            "the server is not running: the runs it shows in flight are stopped below, and "
            "the next `retrain stack up` marks them Crashed"
        )
    _stop_group(stack.worker_pid)  # the worker first: it must not lose its server mid-run
    _stop_group(stack.server_pid)
    if stack.reports_pid:
        _stop_group(stack.reports_pid)
    for pid, command in stop_marked(stack.stack_id):
        say(f"stopped pid {pid} left running by the stack: {command}")
    path.unlink()
    return stack
