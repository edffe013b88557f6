"""`retrain deployment-run`: a bad parameter, deployment or name is one line and a non-zero
exit, never a traceback, and no run is created for it (issue 25.9: `-p reason=bogus` printed
a 100-line traceback)."""

from __future__ import annotations

import asyncio

import pytest
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
