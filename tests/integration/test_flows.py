"""The three flows under `prefect_test_harness` (a temporary Prefect server and database)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint

from retrain.orchestration.artifacts import AS_RECORDED, HOLDOUT_OURS, HOLDOUT_PROD
from tests.conftest import REPO, copy_repo, pipeline_env, record_workspace_as_prod

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def harness(prefect_harness):
    """The session's temporary Prefect server (tests/conftest.py)."""
    return prefect_harness


def flow(name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(REPO)
    entry = {"retrain": "flows/retraining.py:retraining_flow"}.get(
        name, f"flows/{name}.py:{name}_flow"
    )
    return load_flow_from_entrypoint(entry)


def artifacts_of(flow_run_id, field: str = "data") -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async def read() -> dict[str, Any]:
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
                )
            )
            return {a.key: getattr(a, field) for a in found}

    return asyncio.run(read())


def link_url(data: Any) -> str | None:
    """The address of a link artifact (Prefect stores it as Markdown `[text](url)`)."""
    import re

    found = re.fullmatch(r"\[[^\]]*\]\((\S+)\)", str(data).strip())
    return found[1] if found else None


def run_view(flow_run_id) -> dict[str, Any]:
    """What the UI shows of a flow run: name, state, tags, task states, who made each
    artifact, and the WARNING log lines."""
    from prefect.client.orchestration import get_client
    from prefect.logging.handlers import APILogWorker

    # Logs reach the API in batches from a background worker: send the ones still queued
    # (the last warnings of a run, under load) before reading them back.
    APILogWorker.drain_all(timeout=30)
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
        LogFilterLevel,
    )

    async def read() -> dict[str, Any]:
        async with get_client() as client:
            run = await client.read_flow_run(flow_run_id)
            tasks = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            arts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
                )
            )
            logs = await client.read_logs(
                log_filter=LogFilter(
                    flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]),
                    level=LogFilterLevel(ge_=30),
                )
            )
            names = {t.id: t.name for t in tasks}
            return {
                "name": run.name,
                "state": run.state.name,
                "message": run.state.message,
                "tags": set(run.tags),
                "tasks": {t.name: t.state.name for t in tasks},
                "made_by": {a.key: names.get(a.task_run_id) for a in arts if a.key},
                "links": {a.key: link_url(a.data) for a in arts if link_url(a.data)},
                "warnings": [log.message for log in logs],
            }

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
    # The run's card names what only its record knows (issue 28).
    model = result["model"]
    assert f"registry version: `{model['name']}@{model['version']}`" in found["model-card"]
    assert f"Rebuild: `retrain reproduce {result['run_id']}`" in found["model-card"]
    rows = json.loads(found["metrics"]) if isinstance(found["metrics"], str) else found["metrics"]
    auc = next(r for r in rows if r["metric"] == "roc_auc")
    # No production model before: nothing as recorded, nothing scored on the holdout.
    assert auc["ours (TabM-mini)"] > 0.8 and auc[AS_RECORDED] is None and auc[HOLDOUT_PROD] is None
    assert auc[HOLDOUT_OURS] > 0.8 and auc["better"] == "higher"

    # How the run reads in the UI.
    view = run_view(state.state_details.flow_run_id)
    run = f"retrain-manual-{result['run_id']}"
    assert view["name"] == run and state.name == view["state"] == "Promoted"
    assert {"reason:manual", "promoted"} <= view["tags"]
    stages = ["validate", "prepare", "tune", "train", "evaluate", "drift", "report"]
    assert {s: view["tasks"][s] for s in stages} == dict.fromkeys(stages, "Skipped")
    assert {"find-champion", "challenge", "publish-reports", "push", "write-record"} <= set(
        view["tasks"]
    )
    assert view["made_by"]["validation-summary"] == view["made_by"]["data-docs"] == "validate"
    assert view["made_by"]["gate"] == view["made_by"]["metrics"] == "challenge"
    assert view["made_by"]["plots"] == "publish-reports"
    # Links point into this run's own folder (file:// here: no stack serves it).
    folder = repo / "reports" / "runs" / run
    assert view["links"]["plots"] == (folder / "plots" / "index.html").as_uri()
    assert view["links"]["data-docs"] == (folder / "data_docs" / "index.html").as_uri()
    assert (folder / "plots" / "index.html").read_bytes() == (
        repo / "reports" / "plots" / "index.html"
    ).read_bytes()
    # The run's own card page holds its record's facts too (issue 28).
    page = (folder / "model_card.html").read_text()
    assert f"retrain reproduce {result['run_id']}" in page and "registry version" in page
    # The model history: a keyed table artifact and the page, both listing this run.
    assert view["made_by"]["model-history"] == "publish-history"
    assert result["run_id"] in str(found["model-history"])
    assert result["run_id"] in (repo / "reports" / "runs" / "history.html").read_text()


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
    # A run failed by a stage is named by its reason and id too (issue 28).
    view = run_view(state.state_details.flow_run_id)
    assert view["name"].startswith("retrain-manual-2") and "reason:manual" in view["tags"]


def test_a_run_that_fails_early_is_named_by_its_reason_and_id(tmp_path, monkeypatch):
    # Issue 28: failed runs were all `retrain-manual`, with no id and no reason tag. A run
    # refused before it starts (an override of the gate's rules) is named like any other.
    import re

    state = flow("retrain", monkeypatch)(
        repo=str(tmp_path),
        reason="drift",
        overrides={"registry.gate.margin": -1.0},
        return_state=True,
    )
    assert state.is_failed()
    view = run_view(state.state_details.flow_run_id)
    assert re.fullmatch(r"retrain-drift-\d{8}T\d{6}Z-[0-9a-f]{4}", view["name"]), view["name"]
    assert "reason:drift" in view["tags"]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


def _bins(lock_text: str) -> int:
    """evaluate.calibration_bins as the evaluate stage ran with it (dvc.lock)."""
    params = yaml.safe_load(lock_text)["stages"]["evaluate"]["params"]["params.yaml"]
    return params["evaluate"]["calibration_bins"]


def test_overrides_apply_to_their_run_only_then_a_plain_run_uses_committed_params(
    trained_repo, tmp_path, monkeypatch
):
    repo = copy_repo(trained_repo, tmp_path / "repo")
    committed = (repo / "params.yaml").read_text()
    retrain = flow("retrain", monkeypatch)
    state = retrain(repo=str(repo), overrides={"evaluate.calibration_bins": 4}, return_state=True)
    assert state.is_completed(), state.message
    first = state.result()
    assert [s for s, did in first["stages"].items() if did] == ["evaluate", "report"]
    # The record pins what ran: its commit holds the override in params.yaml and dvc.lock ...
    tag = f"run/{first['run_id']}"
    assert "calibration_bins: 4" in _git(repo, "show", f"{tag}:params.yaml")
    assert _bins(_git(repo, "show", f"{tag}:dvc.lock")) == 4
    record = json.loads(_git(repo, "show", f"{tag}:registry/run.json"))
    assert record["overrides"] == {"evaluate.calibration_bins": 4}
    # ... while the branch and the workspace keep the committed params.yaml.
    assert (repo / "params.yaml").read_text() == committed
    assert _git(repo, "show", "HEAD:params.yaml") == committed
    assert _git(repo, "rev-parse", "HEAD^") == _git(repo, "rev-parse", f"{tag}^{{commit}}")
    assert _git(repo, "status", "--porcelain", "--untracked-files=no") == ""

    # A repo whose `dvc repro` does not tune (tune.n_trials 0) while the retrain flow does,
    # with its own overrides (registry.retrain_overrides), as the shipped params.yaml.
    raw = yaml.safe_load(committed)
    raw["tune"]["n_trials"] = 0
    raw["registry"]["retrain_overrides"] = {"tune.n_trials": 2}
    committed = yaml.safe_dump(raw, sort_keys=False)
    (repo / "params.yaml").write_text(committed)
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "flow tunes")

    # The next plain run uses the committed params: evaluate runs again, with 10 bins (tune
    # and train rerun too: the first run's model became the champion, whose parameters are
    # the study's warm start, a tune dependency), and tunes with the flow's budget.
    state = retrain(repo=str(repo), return_state=True)
    assert state.is_completed(), state.message
    plain = state.result()
    assert plain["stages"]["evaluate"] and plain["overrides"] == {"tune.n_trials": 2}
    record = json.loads(_git(repo, "show", f"run/{plain['run_id']}:registry/run.json"))
    assert record["overrides"] == {"tune.n_trials": 2}
    assert record["tuned_params"]["n_trials"] == 2  # the flow's run searched ...
    ran = yaml.safe_load(_git(repo, "show", f"run/{plain['run_id']}:params.yaml"))
    assert ran == {**raw, "tune": {**raw["tune"], "n_trials": 2}}
    assert (repo / "params.yaml").read_text() == committed
    bins = yaml.safe_load(committed)["evaluate"]["calibration_bins"]
    assert _bins((repo / "dvc.lock").read_text()) == bins != 4
    # ... while `dvc repro` on the branch does not.
    from retrain.infra import dvc

    dvc.run(repo, "repro", "--single-item", "tune", env=pipeline_env())
    assert json.loads((repo / "models/tune/best_params.json").read_text())["n_trials"] == 0


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


def _log_traffic(
    repo: Path, rows: pd.DataFrame, at: str, probability: Any, version: Any = "v1.0.0"
) -> None:
    """Rows as `retrain serve` logs them (inputs, score, version, time): one Parquet part."""
    from retrain.config import load_params_at

    logged = rows.drop(columns=["churn"]).copy()
    n = len(logged)
    logged["probability"] = probability
    logged["label"] = (logged["probability"] >= 0.5).astype(int)
    logged["model_version"] = version
    logged["model_md5"] = "0" * 32
    logged["scored_at"] = pd.date_range(at, periods=n, freq="s", tz="UTC")
    logged["request_id"] = [f"req-{at}-{i}" for i in range(n)]
    day = load_params_at(repo).paths.predictions_log / at[:10]
    day.mkdir(parents=True, exist_ok=True)
    logged.to_parquet(day / f"part-{at.replace(':', '')}.parquet", index=False)


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
    # Ids follow the batch number: 2 and 3 keep the mixes' ids apart from the calm batch's.
    mix = simulate(table, schema, n_batches=1, batch_size=500, seed=4, drift=drift, first_batch=2)
    write_batches(calm, landing, "a-calm")
    write_batches(mix, landing, "b-mix")
    broken = simulate(table, schema, n_batches=1, batch_size=100, seed=5)[0]
    broken = broken.drop(columns=["tenure"])
    broken.to_csv(landing / "c-broken.csv", index=False)
    (landing / "c-broken.csv.done").touch()  # the landing protocol: the file is complete
    mix2 = simulate(table, schema, n_batches=1, batch_size=500, seed=6, drift=drift, first_batch=3)
    write_batches(mix2, landing, "d-mix")
    # ... and the service scored drifted traffic: three signals trip in one monitor run. It
    # ran a canary: v2.0.0 scored every other row (300 of b-mix's customers, 20 of d-mix's),
    # whose labels arrive with the batches; v1.0.0's constant score ranks nothing.
    traffic = pd.concat([mix[0].head(300), mix2[0].head(20)], ignore_index=True)
    churned = (traffic["churn"] == "Yes").to_numpy()
    canary = np.arange(len(traffic)) % 2 == 1
    score = np.where(canary, np.where(churned, 0.9, 0.7), 0.99)
    _log_traffic(repo, traffic, "2026-01-01T00:00:00", score, np.where(canary, "v2.0.0", "v1.0.0"))
    pin_before = (repo / "data.dvc").read_text()

    state = flow("monitor", monkeypatch)(repo=str(repo), return_state=True)
    records = state.result()

    by_name = {Path(r["source"]).name: r for r in records}
    names = ("a-calm-0001.csv", "b-mix-0001.csv", "c-broken.csv", "d-mix-0001.csv")
    assert [by_name[n]["status"] for n in names] == [
        "accepted",
        "accepted",
        "rejected",
        "accepted",
    ]
    calm_rec, mix_rec, broken_rec, mix2_rec = (by_name[n] for n in names)
    (traffic_rec,) = [r for r in records if r["status"] == "traffic"]
    assert calm_rec["drift"]["tripped"] is False and "retrain_run" not in calm_rec
    assert mix_rec["drift"]["tripped"] and mix2_rec["drift"]["tripped"]
    assert traffic_rec["drift"]["tripped"]
    # One retrain for the three signals, whose parameters name each of them and this run.
    runs = _runs_of(deployment_id)
    (retrain,) = runs
    assert mix_rec["retrain_run"] == mix2_rec["retrain_run"] == traffic_rec["retrain_run"]
    assert mix_rec["retrain_run"] == str(retrain.id)
    asked = retrain.parameters["drift"]
    assert retrain.parameters["reason"] == "drift"
    assert [s["signal"] for s in asked["signals"]] == ["batch", "batch", "traffic"]
    assert asked["batches"][0].startswith("b-mix-0001") and asked["batches"][1].startswith(
        "d-mix-0001"
    )
    assert asked["traffic"] is True and "traffic until 2026-01-01" in asked["batch"]
    assert all(any(r.startswith(b) for r in asked["reasons"]) for b in asked["batches"])
    assert asked["monitor_run"]["id"] == str(state.state_details.flow_run_id)
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
    view = run_view(state.state_details.flow_run_id)
    assert view["name"] == asked["monitor_run"]["name"] == "monitor-a-calm-0001+3"
    # The state names every outcome: not a plain "Completed".
    assert view["state"] == "Batch rejected + Drift: retrain started"
    message = view["message"]
    assert "3 batch(es) accepted: a-calm-0001.csv, b-mix-0001.csv, d-mix-0001.csv" in message
    assert "1 batch(es) rejected: c-broken.csv (" in message
    assert "drift gate tripped on b-mix-0001.csv, d-mix-0001.csv, traffic until" in message
    assert f"retrain started: {retrain.name} ({retrain.id})" in message
    # The canary, judged on its own traffic once labels arrived: b-mix labels 150 rows each
    # version scored, d-mix 10 (too few to say anything).
    assert (
        "b-mix-0001.csv canary: other v1.0.0 roc_auc 0.5000 (n=150) vs "
        "other v2.0.0 roc_auc 1.0000 (n=150)" in message
    )
    assert "d-mix-0001.csv canary: other v1.0.0 roc_auc 0.5000 (n=10, too little evidence)" in (
        message
    )
    assert "canary" not in calm_rec and mix_rec["canary"]["versions"][1]["n"] == 150
    evidence = artifacts_of(state.state_details.flow_run_id)["canary"]
    assert "| v2.0.0 | other |" in evidence  # (one of the two: they share the key)
    assert view["made_by"]["canary"].startswith("canary-")
    assert {"batch-rejected", "drift-tripped", "retrain-started"} <= view["tags"]
    assert any("rejected" in w and "c-broken.csv" in w for w in view["warnings"])
    assert any("drift gate tripped on b-mix-0001" in w for w in view["warnings"])
    assert view["made_by"]["rejected-batch"] == "ingest"  # one ingest task takes the landing
    # The Evidently report is linked from the drift task, as its own copy of this run.
    link = unquote(view["links"]["drift-report"])
    assert view["made_by"]["drift-report"].startswith("drift-")
    assert link.startswith(f"file://{repo}/reports/runs/monitor-a-calm-0001+3-")
    assert "<html" in Path(link.removeprefix("file://")).read_text()
    # The model history page shows each checked batch's drift per column.
    assert view["made_by"]["model-history"] == "publish-history"
    history = (repo / "reports" / "runs" / "history.html").read_text()
    assert "b-mix-0001" in history and 'data-column="contract"' in history

    # The next monitor run trips on traffic again while that retrain is still scheduled:
    # it starts none and says which one will read the data.
    _log_traffic(repo, traffic, "2026-01-02T00:00:00", 0.99)
    state = flow("monitor", monkeypatch)(repo=str(repo), return_state=True)
    assert [str(r.id) for r in _runs_of(deployment_id)] == [str(retrain.id)]
    view = run_view(state.state_details.flow_run_id)
    assert view["state"] == "Drift: retrain pending" and "retrain-pending" in view["tags"]
    assert f"no new retrain: {retrain.name} ({retrain.id})" in view["message"]
    assert state.result()[0]["retrain_run"] == str(retrain.id)


def test_predict_writes_scores_with_model_version_and_time(trained_repo, tmp_path, monkeypatch):
    repo = copy_repo(trained_repo, tmp_path / "repo")
    inputs = repo / "data" / "predict"  # the predict flow reads only the data folders
    inputs.mkdir(parents=True)
    src = inputs / "none.csv"
    pd.read_csv(repo / "data" / "raw" / "telco_churn.csv").head(5).to_csv(src, index=False)
    state = flow("predict", monkeypatch)(input_path=str(src), repo=str(repo), return_state=True)
    assert state.is_failed() and "run a retrain first" in str(state.message)  # no prod yet
    assert record_workspace_as_prod(repo)["model"]["prod"] == "v1.0.0"
    table = pd.read_csv(repo / "data" / "raw" / "telco_churn.csv").head(50).drop(columns=["churn"])
    src = inputs / "to_score.parquet"
    table.to_parquet(src)
    state = flow("predict", monkeypatch)(input_path=str(src), repo=str(repo), return_state=True)
    out = Path(state.result())
    view = run_view(state.state_details.flow_run_id)
    assert view["name"] == "predict-to_score.parquet"
    assert set(view["tasks"]) == {"validate", "load-prod-model", "score", "write"}
    assert view["made_by"]["predictions"] == "write"
    summary = artifacts_of(state.state_details.flow_run_id)["predictions"]
    assert "## 50 rows scored by `churn-model@v1.0.0`" in summary
    assert "predicted positive:" in summary and "| score | rows |" in summary
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
    src = repo / "data" / "predict" / "bad.csv"  # the predict flow reads only data folders
    src.parent.mkdir(parents=True)
    table.to_csv(src, index=False)
    state = flow("predict", monkeypatch)(input_path=str(src), repo=str(repo), return_state=True)
    assert state.is_failed()
    assert "column 'payment_method' failed expect_column_values_to_be_in_set" in str(state.message)


def test_a_batch_that_breaks_the_retrain_leaves_the_workspace_as_found(
    trained_repo, tmp_path, monkeypatch
):
    """Issue 25.1/25.2: a batch put in by hand that `prepare` used to crash on (e-mail
    addresses as ids, a quoted id holding a newline) left metrics/prepare.json deleted and
    dvc.lock modified. The validate stage now stops it (the data contract), after DVC has
    removed that stage's output: the run says in one line which batch broke it, and the
    workspace is as the run found it."""
    repo = copy_repo(trained_repo, tmp_path / "repo")
    git = ("-c", "user.name=t", "-c", "user.email=t@t")
    _git(repo, "add", "-A")
    _git(repo, *git, "commit", "-qm", "trained")
    batch = pd.read_csv(repo / "data" / "raw" / "telco_churn.csv").head(120)
    batch["customer_id"] = [f"c{i}@example.com" for i in range(len(batch))]
    batch.loc[3, "customer_id"] = 'multi\nline "id"'
    planted = repo / "data" / "raw" / "batches" / "batch-0007.csv"
    planted.parent.mkdir(parents=True)
    batch.to_csv(planted, index=False)
    # Accepted as ingest accepts a batch: its bytes pinned by data.dvc, committed.
    subprocess.run([sys.executable, "-m", "dvc", "commit", "-f", "-q", "data.dvc"], cwd=repo)
    _git(repo, *git, "commit", "-qam", "accept batch-0007")

    def dvc_status() -> Any:
        proc = subprocess.run(
            [sys.executable, "-m", "dvc", "status", "--json"],
            cwd=repo, env=pipeline_env(), capture_output=True, text=True, check=True,
        )  # fmt: skip
        return json.loads(proc.stdout)

    before = dvc_status()
    files = (
        "dvc.lock",
        "reports/validation/summary.json",  # validate's out, removed by DVC as the stage ran
        "metrics/prepare.json",
        "data/prepared/train.parquet",
    )
    kept = {f: (repo / f).read_bytes() for f in files}
    state = flow("retrain", monkeypatch)(repo=str(repo), return_state=True)
    assert state.is_failed()
    message = str(state.message)
    assert "batch data/raw/batches/batch-0007.csv broke the retrain at stage validate" in message
    assert "workspace restored" in message and "\n" not in message.split(": ", 1)[1]
    assert _git(repo, "status", "--porcelain") == ""
    assert dvc_status() == before  # only the new batch's deps changed, as before the run
    assert {f: (repo / f).read_bytes() for f in files} == kept


def test_project_lock_is_held_by_the_server_and_names_its_holder(tmp_path):
    """With a server configured (the harness), two lock files (two machines) share one lock."""
    from retrain.registry.lock import RetrainBusy, exclusive

    said: list[str] = []
    with exclusive(tmp_path / "m1.lock", "batch-7.csv", 0, command="ingest", limit="lock-test"):
        with pytest.raises(
            RetrainBusy,
            match=r"another ingest holds lock-test \(Prefect concurrency limit at http\S+\) "
            r"\(pid \d+, run batch-7.csv, since ",
        ):
            with exclusive(
                tmp_path / "m2.lock",
                "run-b",
                1,
                poll_s=0.2,
                on_wait=said.append,
                limit="lock-test",
            ):
                pass
    assert said and said[0].startswith("retrain run-b waiting for the project lock lock-test")
    with exclusive(tmp_path / "m2.lock", "run-b", 0, limit="lock-test"):
        pass  # released with the block


def test_the_metrics_and_trials_artifacts_of_a_regression_run(tmp_path):
    """Issue 26: on a real Prefect server, a regression run's metrics table lists RMSE, MAE,
    R² and the interval's coverage, each with its direction, and the trials table names the
    metric tuning watched (val/rmse), not the binary task's."""
    from prefect import flow as prefect_flow

    from retrain.orchestration import artifacts
    from retrain.registry.gate import GateResult
    from tests.conftest import params_in, telco_params

    raw = telco_params()
    numeric = [c for c in raw["dataset"]["numeric"] if c != "monthly_charges"]
    raw["dataset"].update(
        task="regression", target="monthly_charges", positive_class=None, numeric=numeric
    )
    raw["registry"]["gate"]["metric"] = "rmse"
    params = params_in(tmp_path, raw)
    params.paths.metrics.parent.mkdir(parents=True, exist_ok=True)
    params.paths.metrics.write_text(json.dumps({"tabm": {"rmse": 8.1, "mae": 6.2, "r2": 0.93}}))
    params.paths.tune_trials.parent.mkdir(parents=True, exist_ok=True)
    params.paths.tune_trials.write_text("trial,value,state\n0,0.31,COMPLETE\n")
    decision = GateResult(
        "first", True, ["no model in production"], "rmse", 0.002, 600, {"rmse": 8.3}
    )

    @prefect_flow(name="regression-artifacts")
    def publish() -> None:
        artifacts.publish_metrics(params, decision, None)
        artifacts.publish_trials(params)

    state = publish(return_state=True)
    found = artifacts_of(state.state_details.flow_run_id)
    described = artifacts_of(state.state_details.flow_run_id, "description")
    assert "val/rmse" in described["tune-trials"] and "val/auroc" not in described["tune-trials"]
    assert "served predictions" in described["metrics"]
    rows = {r["metric"]: r for r in json.loads(found["metrics"])}
    assert list(rows) == ["rmse", "mae", "r2", "coverage"]
    assert rows["rmse"]["better"] == "lower" and rows["r2"]["better"] == "higher"
    assert rows["rmse"]["ours (TabM-mini)"] == 8.1 and rows["rmse"][HOLDOUT_OURS] == 8.3
    assert [r["trial"] for r in json.loads(found["tune-trials"])] == [1]
