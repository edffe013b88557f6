"""prefect.yaml is wired to real code: a stale entrypoint or a missing schedule fails here."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import REPO

DEPLOYMENTS = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_every_entrypoint_imports_a_flow(deployment, monkeypatch):
    from prefect.flows import Flow, load_flow_from_entrypoint

    monkeypatch.chdir(REPO)  # entrypoints are relative to the project root
    flow = load_flow_from_entrypoint(deployment["entrypoint"])
    assert isinstance(flow, Flow)
    assert flow.name == deployment["name"]


def test_schedules():
    crons = {d["name"]: [s["cron"] for s in d.get("schedules", [])] for d in DEPLOYMENTS}
    assert crons == {"retrain": ["0 3 * * 1"], "monitor": ["0 6 * * *"], "predict": []}


def test_no_flow_file_shadows_the_package():
    assert not (REPO / "flows" / "retrain.py").exists()
