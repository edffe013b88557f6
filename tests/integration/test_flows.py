"""The three flows under `prefect_test_harness` (a temporary Prefect server and database)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prefect.flows import load_flow_from_entrypoint

from tests.conftest import REPO, copy_repo, pipeline_env, record_workspace_as_prod

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def flow(name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(REPO)
    entry = {"retrain": "flows/retraining.py:retraining_flow"}.get(
        name, f"flows/{name}.py:{name}_flow"
    )
    return load_flow_from_entrypoint(entry)


def artifacts_of(flow_run_id) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async def read() -> dict[str, Any]:
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
                )
            )
            return {a.key: a.data for a in found}

    return asyncio.run(read())


def test_retrain_on_an_up_to_date_repo_skips_every_stage(trained_repo, tmp_path, monkeypatch):
    repo = copy_repo(trained_repo, tmp_path / "repo")
    lock = (repo / "dvc.lock").read_bytes()
    state = flow("retrain", monkeypatch)(repo=str(repo), reason="manual", return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["stages"] == dict.fromkeys(
        ["validate", "prepare", "tune", "train", "evaluate", "drift", "report"], False
    )
    assert (repo / "dvc.lock").read_bytes() == lock
    # Nothing was in production: the model becomes the first prod version, with a record.
    assert result["gate"] == "first"
    assert result["model"]["version"] == result["model"]["prod"] == "v1.0.0"
    assert subprocess.run(
        ["git", "tag", "--list", f"run/{result['run_id']}"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    found = artifacts_of(state.state_details.flow_run_id)
    expected = {"metrics", "validation-summary", "plots", "data-docs", "model-card", "gate"}
    assert expected | {"run-record"} <= set(found)
    assert "PROMOTED (first model)" in found["gate"]
    rows = json.loads(found["metrics"]) if isinstance(found["metrics"], str) else found["metrics"]
    auc = next(r for r in rows if r["metric"] == "roc_auc")
    assert auc["ours (MLP)"] > 0.8 and auc["production"] is None  # no production model before


def test_broken_table_fails_the_flow_and_keeps_the_previous_model(
    trained_repo, tmp_path, monkeypatch
):
    repo = copy_repo(trained_repo, tmp_path / "repo")
    raw = repo / "data" / "raw" / "telco_churn.csv"
    df = pd.read_csv(raw)
    df.loc[5, "contract"] = "Three year"
    df.to_csv(raw, index=False)
    kept = {
        p: (repo / p).read_bytes() for p in ("models/model/model.onnx", "metrics/evaluate.json")
    }
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    state = flow("retrain", monkeypatch)(repo=str(repo), return_state=True)
    assert state.is_failed()
    assert "column 'contract' failed expect_column_values_to_be_in_set" in str(state.message)
    for path, content in kept.items():
        assert (repo / path).read_bytes() == content, path
    # A failed retrain leaves no record: no commit, no tag.
    git_state = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    assert git_state == head
    assert not subprocess.run(
        ["git", "tag"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    summary = artifacts_of(state.state_details.flow_run_id)["validation-summary"]
    assert "FAILED" in summary and "Three year" in summary


def test_retrain_applies_overrides_then_reruns_from_that_stage(
    trained_repo, tmp_path, monkeypatch
):
    repo = copy_repo(trained_repo, tmp_path / "repo")
    state = flow("retrain", monkeypatch)(
        repo=str(repo), overrides={"evaluate.calibration_bins": 4}, return_state=True
    )
    assert state.is_completed(), state.message
    ran = state.result()["stages"]
    assert [s for s, did in ran.items() if did] == ["evaluate", "report"]
    assert "calibration_bins: 4" in (repo / "params.yaml").read_text()


def _retrain_deployment() -> Any:
    """A `retrain/retrain` deployment on the harness server, with no worker: runs stay queued."""
    from prefect.client.orchestration import get_client

    async def make() -> Any:
        async with get_client() as client:
            flow_id = await client.create_flow_from_name("retrain")
            return await client.create_deployment(flow_id=flow_id, name="retrain")

    return asyncio.run(make())


def _runs_of(deployment_id) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    async def read() -> list[Any]:
        async with get_client() as client:
            return await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            )

    return asyncio.run(read())


def test_monitor_closes_the_loop(trained_repo, tmp_path, monkeypatch):
    from retrain.config import load_params_at
    from retrain.data.io import read_table
    from retrain.data.simulate import Drift, simulate, write_batches

    repo = copy_repo(trained_repo, tmp_path / "repo")
    deployment_id = _retrain_deployment()
    schema = load_params_at(repo).dataset
    table = read_table(repo / "data" / "raw")
    landing = repo / "data" / "landing"
    calm = simulate(table, schema, n_batches=1, batch_size=500, seed=3)
    drift = Drift("mix", "contract", 0.9, "Month-to-month")
    mix = simulate(table, schema, n_batches=1, batch_size=500, seed=4, drift=drift)
    write_batches(calm, landing, "a-calm")
    write_batches(mix, landing, "b-mix")
    broken = simulate(table, schema, n_batches=1, batch_size=100, seed=5)[0]
    broken = broken.drop(columns=["tenure"])
    broken.to_csv(landing / "c-broken.csv", index=False)
    pin_before = (repo / "data.dvc").read_text()

    records = flow("monitor", monkeypatch)(repo=str(repo))

    by_name = {Path(r["source"]).name: r for r in records}
    names = ("a-calm-0001.csv", "b-mix-0001.csv", "c-broken.csv")
    assert [by_name[n]["status"] for n in names] == ["accepted", "accepted", "rejected"]
    calm_rec, mix_rec, broken_rec = (by_name[n] for n in names)
    assert calm_rec["drift"]["tripped"] is False and "retrain_run" not in calm_rec
    assert mix_rec["drift"]["tripped"] is True
    runs = _runs_of(deployment_id)
    assert [str(r.id) for r in runs] == [mix_rec["retrain_run"]]
    assert runs[0].parameters["reason"] == "drift"
    assert runs[0].parameters["drift"]["batch"].startswith("b-mix-0001")
    # Accepted batches are versioned: data.dvc moved on, and the drift report is on disk.
    assert (repo / "data.dvc").read_text() != pin_before
    cloud = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--cloud", "data.dvc"],
        cwd=repo,
        env=pipeline_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "in sync" in cloud.stdout, cloud.stdout  # ... and pushed to the DVC remote
    report_dir = repo / "reports" / "monitor" / Path(mix_rec["destination"]).stem
    assert (report_dir / "drift.html").exists() and (report_dir / "drift.json").exists()
    assert "missing ['tenure']" in broken_rec["reason"]
    assert not list(landing.glob("*.csv"))


def test_predict_writes_scores_with_model_version_and_time(trained_repo, tmp_path, monkeypatch):
    repo = copy_repo(trained_repo, tmp_path / "repo")
    src = tmp_path / "none.csv"
    pd.read_csv(repo / "data" / "raw" / "telco_churn.csv").head(5).to_csv(src, index=False)
    state = flow("predict", monkeypatch)(input_path=str(src), repo=str(repo), return_state=True)
    assert state.is_failed() and "run a retrain first" in str(state.message)  # no prod yet
    assert record_workspace_as_prod(repo)["model"]["prod"] == "v1.0.0"
    table = pd.read_csv(repo / "data" / "raw" / "telco_churn.csv").head(50).drop(columns=["churn"])
    src = tmp_path / "to_score.parquet"
    table.to_parquet(src)
    out = Path(flow("predict", monkeypatch)(input_path=str(src), repo=str(repo)))
    scored = pd.read_parquet(out)
    assert list(scored.columns) == [
        "customer_id",
        "probability",
        "label",
        "model_version",
        "registry_version",
        "scored_at",
    ]
    assert len(scored) == 50 and scored["probability"].between(0, 1).all()
    assert scored["model_version"].nunique() == 1 and scored["model_version"][0].startswith("md5:")
    assert set(scored["registry_version"]) == {"churn-model@v1.0.0"}
    assert out.parent == repo / "predictions"


def test_predict_rejects_a_table_with_an_unseen_category(trained_repo, tmp_path, monkeypatch):
    repo = copy_repo(trained_repo, tmp_path / "repo")
    table = pd.read_csv(repo / "data" / "raw" / "telco_churn.csv").head(20)
    table.loc[3, "payment_method"] = "Crypto"
    src = tmp_path / "bad.csv"
    table.to_csv(src, index=False)
    state = flow("predict", monkeypatch)(input_path=str(src), repo=str(repo), return_state=True)
    assert state.is_failed()
    assert "column 'payment_method' failed expect_column_values_to_be_in_set" in str(state.message)
