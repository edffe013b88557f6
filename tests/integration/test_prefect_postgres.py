"""The local stack on a Prefect server whose database is PostgreSQL (a private cluster on
127.0.0.1): deployments land in PostgreSQL and the scheduler creates their scheduled runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from retrain.orchestration import stack
from tests.conftest import make_pipeline_repo
from tests.servers import postgres, postgres_missing

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.engines,
    pytest.mark.skipif(postgres_missing() is not None, reason=str(postgres_missing())),
]

SCHEDULED = r"""
import asyncio, json
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterState,
    FlowRunFilterStateType)

async def main():
    out = {}
    async with get_client() as client:
        for name in ("retrain/retrain", "monitor/monitor", "predict/predict"):
            dep = await client.read_deployment_by_name(name)
            runs = await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=["SCHEDULED"]))),
            )
            out[name] = [r.expected_start_time.isoformat() for r in runs]
    print(json.dumps(out))

asyncio.run(main())
"""


def test_stack_on_postgresql_deploys_and_schedules(tmp_path, small_params_raw, monkeypatch):
    import asyncpg  # noqa: F401  (the server's PostgreSQL driver)
    import psycopg2

    repo = make_pipeline_repo(tmp_path / "repo", small_params_raw, tmp_path / "remote")
    with postgres("prefect") as (host, port):
        monkeypatch.setenv(
            "PREFECT_API_DATABASE_CONNECTION_URL",
            f"postgresql+asyncpg://retrain@{host}:{port}/prefect",
        )
        up = stack.up(repo, stack.free_port(), timeout=240)
        try:
            env = {**os.environ, "PREFECT_API_URL": up.api_url}
            seen: dict[str, list[str]] = {}
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                proc = subprocess.run(
                    [sys.executable, "-c", SCHEDULED],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert proc.returncode == 0, proc.stderr[-3000:]
                seen = json.loads(proc.stdout.strip().splitlines()[-1])
                if seen["retrain/retrain"] and seen["monitor/monitor"]:
                    break
                time.sleep(5)
            conn = psycopg2.connect(host=host, port=port, user="retrain", dbname="prefect")
            with conn, conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM deployment")
                (deployments,) = cur.fetchone()
                cur.execute("SELECT count(*) FROM flow_run WHERE state_type = 'SCHEDULED'")
                (scheduled,) = cur.fetchone()
            conn.close()
        finally:
            stack.down(repo)
    assert deployments == 3
    # The scheduler filled each schedule (weekly retrain, daily monitor) with upcoming runs;
    # predict runs on demand only.
    assert seen["retrain/retrain"] and seen["monitor/monitor"] and not seen["predict/predict"], (
        seen
    )
    # prefect.yaml's crons: Mondays 03:00 UTC and daily 06:00 UTC.
    assert all(t.endswith("T03:00:00+00:00") for t in seen["retrain/retrain"])
    assert all(t.endswith("T06:00:00+00:00") for t in seen["monitor/monitor"])
    assert scheduled == sum(len(v) for v in seen.values())
