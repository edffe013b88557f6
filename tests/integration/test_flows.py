"""The three flows under `prefect_test_harness` (a temporary Prefect server and database)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prefect.flows import load_flow_from_entrypoint

from tests.conftest import REPO, copy_repo

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
        ["validate", "prepare", "tune", "train", "evaluate"], False
    )
    assert (repo / "dvc.lock").read_bytes() == lock
    found = artifacts_of(state.state_details.flow_run_id)
    assert {"metrics", "validation-summary", "plots", "data-docs"} <= set(found)
    rows = json.loads(found["metrics"]) if isinstance(found["metrics"], str) else found["metrics"]
    auc = next(r for r in rows if r["metric"] == "roc_auc")
    assert auc["ours (MLP)"] == auc["production"] > 0.8  # nothing retrained: production unchanged


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
    state = flow("retrain", monkeypatch)(repo=str(repo), return_state=True)
    assert state.is_failed()
    assert "column 'contract' failed expect_column_values_to_be_in_set" in str(state.message)
    for path, content in kept.items():
        assert (repo / path).read_bytes() == content, path
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
    assert [s for s, did in ran.items() if did] == ["evaluate"]
    assert "calibration_bins: 4" in (repo / "params.yaml").read_text()


def test_monitor_scores_newest_batch_and_flags_shifted_scores(trained_repo, tmp_path, monkeypatch):
    repo = copy_repo(trained_repo, tmp_path / "repo")
    landing = repo / "data" / "landing"
    landing.mkdir(parents=True)
    data = pd.read_csv(repo / "data" / "raw" / "telco_churn.csv")
    data.sample(800, random_state=1).to_csv(landing / "a-calm.csv", index=False)
    monitor = flow("monitor", monkeypatch)
    calm = monitor(repo=str(repo))
    assert calm["drift"] is False and calm["rows"] == 800
    # Only month-to-month fibre customers: the churn-prone segment, scores shift upward.
    risky = data[
        (data["contract"] == "Month-to-month") & (data["internet_service"] == "Fiber optic")
    ]
    risky.head(800).to_csv(landing / "b-risky.csv", index=False)
    shifted = monitor(repo=str(repo))
    assert shifted["batch"] == "b-risky.csv"
    assert shifted["drift"] is True and shifted["mean_score"] > calm["mean_score"]
    assert (repo / "reports" / "monitor" / "b-risky" / "summary.json").exists()


def test_predict_writes_scores_with_model_version_and_time(trained_repo, tmp_path, monkeypatch):
    repo = copy_repo(trained_repo, tmp_path / "repo")
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
        "scored_at",
    ]
    assert len(scored) == 50 and scored["probability"].between(0, 1).all()
    assert scored["model_version"].nunique() == 1 and scored["model_version"][0].startswith("md5:")
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
