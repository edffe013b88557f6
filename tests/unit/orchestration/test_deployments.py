"""`retrain deployment-run`: a bad parameter, deployment or name is one line and a non-zero
exit, never a traceback, and no run is created for it (issue 25.9: `-p reason=bogus` printed
a 100-line traceback)."""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from prefect import flow
from typer.testing import CliRunner

from retrain.cli import app
from tests.conftest import REPO

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deployed(prefect_harness) -> str:
    from prefect.flows import load_flow_from_entrypoint

    flow = load_flow_from_entrypoint(f"{REPO}/flows/retraining.py:retraining_flow")
    flow.to_deployment(name="retrain").apply()
    return "retrain/retrain"


def _flow_runs() -> int:
    from prefect.client.orchestration import get_client

    async def count() -> int:
        async with get_client() as client:
            return len(await client.read_flow_runs())

    return asyncio.run(count())


@pytest.mark.parametrize(
    ("params", "said"),
    [
        (
            ["reason=bogus"],
            "error: retrain/retrain: parameter 'reason': 'bogus' is not one of "
            "['schedule', 'drift', 'manual']",
        ),
        (
            ["lock_timeout_s=abc"],
            "error: retrain/retrain: parameter 'lock_timeout_s': 'abc' is not valid",
        ),
        (
            ["nope=1"],
            "error: retrain/retrain: unknown parameter 'nope'; its parameters: ['dataset', "
            "'drift', 'lock_timeout_s', 'overrides', 'reason', 'repo']",
        ),
        (["reason"], "error: parameter 'reason': expected key=value"),
    ],
)
def test_a_bad_parameter_is_one_line_naming_it_and_no_run(deployed, params, said):
    before = _flow_runs()
    args = ["deployment-run", deployed, "--timeout", "5"]
    out = CliRunner().invoke(app, args + [a for p in params for a in ("-p", p)])
    assert out.exit_code == 1
    (line,) = out.output.strip().splitlines()
    assert line.startswith(said), line
    assert _flow_runs() == before


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("nope/nope", "error: deployment nope/nope: not found on http"),
        ("retrain", "error: deployment 'retrain': expected FLOW/DEPLOYMENT"),
    ],
)
def test_a_bad_deployment_name_is_one_line(deployed, name, said):
    out = CliRunner().invoke(app, ["deployment-run", name, "--timeout", "5"])
    assert out.exit_code == 1
    (line,) = out.output.strip().splitlines()
    assert line.startswith(said), line


@flow(name="named", flow_run_name="named-{label}")
def named_flow(label: str = "x") -> str:
    """A flow that completes at once, named from its parameter as the retrain flow is."""
    return label


class _InProcessWorker:
    """Runs, in this process, each scheduled run of a set of flows (no worker, no
    subprocess: the harness's settings are this process's)."""

    def __init__(self, flows: dict[str, Any]) -> None:
        self.flows = flows  # deployment id -> flow
        # Only runs created from now on: the session's server also holds other tests' runs
        # still Scheduled (a drift retrain the monitor test started), which are not ours.
        self.since = datetime.now(UTC)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType
        from prefect.flow_engine import run_flow

        scheduled = FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
        )
        while not self.stop.wait(0.5):
            with get_client(sync_client=True) as client:
                runs = client.read_flow_runs(flow_run_filter=scheduled)
            for run in runs:
                found = self.flows.get(str(run.deployment_id))
                if found is not None and run.created is not None and run.created >= self.since:
                    run_flow(found, flow_run=run, parameters=run.parameters, return_type="state")

    def __enter__(self) -> _InProcessWorker:
        self.since = datetime.now(UTC)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def test_a_run_is_reported_by_its_name_not_its_uuid(deployed, tmp_path):
    # Issue 28: `retrain deployment-run` printed the run's UUID; the UI lists runs by name.
    from prefect.flows import load_flow_from_entrypoint

    retrain = load_flow_from_entrypoint(f"{REPO}/flows/retraining.py:retraining_flow")
    ids = {
        str(named_flow.to_deployment(name="named").apply()): named_flow,
        str(_deployment_id(deployed)): retrain,
    }
    runner = CliRunner()
    with _InProcessWorker(ids):
        done = runner.invoke(
            app, ["deployment-run", "named/named", "-p", "label=abc", "--timeout", "60"]
        )
        # A run that fails early (a refused override) is named by its reason and id too.
        failed = runner.invoke(
            app,
            [
                "deployment-run",
                deployed,
                "--timeout",
                "60",
                "-p",
                "reason=drift",
                "-p",
                'overrides={"registry.gate.margin": -1}',
                "-p",
                f"repo={tmp_path}",
            ],
        )
    assert done.exit_code == 0, done.output
    assert done.output.strip() == "named/named run named-abc: Completed"
    assert failed.exit_code == 1
    (line,) = failed.output.strip().splitlines()
    assert re.match(
        r"error: retrain/retrain run 'retrain-drift-\d{8}T\d{6}Z-[0-9a-f]{4}' Failed: ", line
    ), line


def _deployment_id(name: str) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(name).id
