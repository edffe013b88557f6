"""The local stack against a REAL Prefect server: up, deploy, trigger, read back, down."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from retrain.orchestration import stack
from tests.conftest import make_pipeline_repo

pytestmark = [pytest.mark.integration, pytest.mark.slow]

READ_BACK = r"""
import asyncio, json, sys, time
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter, ArtifactFilterFlowRunId, DeploymentFilter, DeploymentFilterId,
    FlowRunFilter, FlowRunFilterId, FlowRunFilterState, FlowRunFilterStateType)
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment

run = run_deployment(
    "retrain/retrain", parameters={"reason": "manual"}, timeout=900, poll_interval=2)

async def main():
    async with get_client() as client:
        runs = FlowRunFilter(id=FlowRunFilterId(any_=[run.id]))
        tasks = await client.read_task_runs(flow_run_filter=runs)
        arts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
        schedules = {}
        for name in ("retrain/retrain", "monitor/monitor", "predict/predict"):
            dep = await client.read_deployment_by_name(name)
            schedules[name] = [s.schedule.cron for s in dep.schedules]
        # The scheduler fires: upcoming (Scheduled) runs of every scheduled deployment,
        # within a bounded wait (it runs every 60 s; the retrain above took longer).
        upcoming, deadline = {}, time.monotonic() + 150
        while True:
            for name in ("retrain/retrain", "monitor/monitor"):
                dep = await client.read_deployment_by_name(name)
                found = await client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])),
                    flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))))
                upcoming[name] = sorted(r.expected_start_time.isoformat() for r in found)
            if all(upcoming.values()) or time.monotonic() > deadline:
                break
            await asyncio.sleep(3)
        print(json.dumps({"upcoming": upcoming,
            "state": run.state.type.value, "message": run.state.message,
            "tasks": {t.name: t.state.type.value for t in tasks},
            "artifacts": sorted(a.key for a in arts if a.key), "schedules": schedules},
            default=str))

asyncio.run(main())
"""


def test_stack_runs_the_retrain_deployment_end_to_end(tmp_path, small_params_raw, trained_repo):
    repo = make_pipeline_repo(tmp_path / "repo", small_params_raw, tmp_path / "remote")
    up = stack.up(repo, stack.free_port(), timeout=120)
    try:
        env = {**os.environ, "PREFECT_API_URL": up.api_url}
        proc = subprocess.run(
            [sys.executable, "-c", READ_BACK],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        seen = json.loads(proc.stdout.strip().splitlines()[-1])
        # Flow parameters from the API are checked, and a failed deployment run says why.
        refused = {
            "retrain/retrain": ['overrides={"paths.raw_data": "/etc"}'],
            "predict/predict": [
                "input_path=data/raw/telco_churn.csv",
                "output_path=/tmp/x.parquet",
            ],
        }
        failures = {}
        for name, params in refused.items():
            ran = subprocess.run(
                [sys.executable, "-m", "retrain.cli", "deployment-run", name, "--timeout", "600"]
                + [arg for p in params for arg in ("-p", p)],
                cwd=repo,
                env=env,
                capture_output=True,
                text=True,
                timeout=700,
            )
            failures[name] = (ran.returncode, ran.stdout, ran.stderr)
    finally:
        down = stack.down(repo)
    assert down == up
    for pid in (up.server_pid, up.worker_pid):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert seen["state"] == "COMPLETED", seen["message"]
    # Both scheduled deployments have upcoming runs, at their cron times; the server logged
    # no error (with SQLAlchemy 2.1 its scheduler fails every minute and none appear).
    assert set(seen["upcoming"]) == {"retrain/retrain", "monitor/monitor"}
    for name, when in seen["upcoming"].items():
        assert when, f"the scheduler created no run of {name}"
    assert all(t.endswith("03:00:00+00:00") for t in seen["upcoming"]["retrain/retrain"])
    assert all(t.endswith("06:00:00+00:00") for t in seen["upcoming"]["monitor/monitor"])
    server_log = (repo / ".prefect" / "server.log").read_text(errors="replace")
    assert "Traceback" not in server_log and " ERROR " not in server_log, server_log[-3000:]
    # A refused parameter fails the run with a one-line reason naming it.
    code, out, err = failures["retrain/retrain"]
    assert code == 1, out + err
    (line,) = err.strip().splitlines()
    assert line.startswith("error: retrain/retrain run ") and " Failed: " in line, line
    assert "'paths.raw_data' is not a tunable key" in line
    code, out, err = failures["predict/predict"]
    assert code == 1 and "output path /tmp/x.parquet: outside the project" in err, out + err
    stages = ["validate", "prepare", "tune", "train", "evaluate", "drift", "report"]
    assert {k: v for k, v in seen["tasks"].items() if k in stages} == dict.fromkeys(
        stages, "COMPLETED"
    )
    # Around the stages: the champion lookup, the gate, the push and the record.
    others = sorted(k.rsplit("-", 1)[0] for k in seen["tasks"] if k not in stages)
    assert others == ["challenge", "find_champion", "push", "write_record"]
    assert set(seen["tasks"].values()) == {"COMPLETED"}
    assert {
        "metrics",
        "validation-summary",
        "plots",
        "data-docs",
        "gate",
        "run-record",
        "model-card",
    } <= set(seen["artifacts"])
    assert seen["schedules"] == {
        "retrain/retrain": ["0 3 * * 1"],
        "monitor/monitor": ["0 6 * * *"],
        "predict/predict": [],
    }
    # The flow drove DVC itself: the same inputs give the same dvc.lock as a plain `dvc repro`.
    assert (repo / "dvc.lock").read_text() == (trained_repo / "dvc.lock").read_text()
    # ... and recorded the run: the first model is prod.
    tags = subprocess.run(["git", "tag"], cwd=repo, capture_output=True, text=True).stdout
    assert "churn-model#prod#1" in tags.split() and "run/" in tags
