"""Real servers for the scale-out tests, started privately on loopback and stopped after:
a PostgreSQL cluster (initdb in a temporary directory), a Prefect server, moto's S3 server."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from retrain.orchestration.stack import free_port


def postgres_bin(name: str) -> str | None:
    """A PostgreSQL server binary: on PATH, else Debian's /usr/lib/postgresql/<v>/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def postgres_missing() -> str | None:
    """Why a private PostgreSQL cannot start here (None: it can)."""
    if not all(postgres_bin(n) for n in ("initdb", "pg_ctl")):
        return "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the server as"
    return None


@contextmanager
def postgres(database: str = "retrain") -> Iterator[tuple[str, int]]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 with trust auth for user `retrain`; yields
    (host, port). PostgreSQL refuses to run as root: then it runs as `postgres`."""
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    assert initdb and pg_ctl
    base = Path(tempfile.mkdtemp(prefix="retrain-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", free_port()
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-U", "retrain", "--auth=trust", "-E", "UTF8"], **run
    )
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*as_user, pg_ctl, "-D", str(data), "-o", opts, "-l", str(base / "log"), "-w", "start"],
        **run,
    )
    try:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user="retrain", dbname="postgres")
        conn.autocommit = True
        conn.cursor().execute(f"CREATE DATABASE {database}")
        conn.close()
        yield "127.0.0.1", port
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(base, ignore_errors=True)


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url}: not up after {timeout:.0f}s: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def prefect_server(home: Path, database_url: str | None = None) -> Iterator[dict[str, str]]:
    """A Prefect server (SQLite in `home`, or `database_url`); yields the clients' env."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    log = home / "server.log"
    prefect = str(Path(sys.executable).parent / "prefect")
    proc = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_http(f"{env['PREFECT_API_URL']}/health", proc, 180, log)
        yield env
    finally:
        _stop(proc)


def moto_server_bin() -> str | None:
    """moto's S3 server: $MOTO_SERVER, `moto_server` on PATH, or the venv .ci/run makes."""
    for candidate in (
        os.environ.get("MOTO_SERVER"),
        shutil.which("moto_server"),
        "/tmp/moto-venv/bin/moto_server",
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@contextmanager
def moto_s3(workdir: Path) -> Iterator[str]:
    """moto's server mode on 127.0.0.1; yields the endpoint URL."""
    binary = moto_server_bin()
    assert binary
    port = free_port()
    log = workdir / "moto.log"
    proc = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_http(url, proc, 60, log)
        yield url
    finally:
        _stop(proc)
