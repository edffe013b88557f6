"""A second public table end to end, configured by `retrain init` alone: IBM HR attrition
(1,470 rows, target `Attrition`, no id column). `dvc repro` with no edit, then generated
batches, ingest, the drift check and scoring with the promoted model."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, attrition_table, init_repo, pipeline_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    return attrition_table(tmp_path_factory.mktemp("attrition") / "attrition.csv")


@pytest.fixture(scope="module")
def repo(tmp_path_factory, table) -> Path:
    root = tmp_path_factory.mktemp("attrition-repo")
    repo = init_repo(root / "repo", table, root / "remote", target="Attrition")
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"],
        cwd=repo,
        env=pipeline_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return repo


def test_init_configures_the_table_and_replaces_the_previous_one(repo, table):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    ds = params["dataset"]
    assert (ds["name"], ds["target"], ds["positive_class"]) == ("attrition", "Attrition", "Yes")
    assert "id_column" not in ds  # no id in this table: the key is left out
    assert "MonthlyIncome" in ds["numeric"] and "JobRole" in ds["categorical"]
    assert sorted(p.name for p in (repo / "data" / "raw").iterdir()) == ["attrition.csv"]
    suite = json.loads((repo / ds["suite"]).read_text())
    assert all(e["meta"]["why"] and e["severity"] for e in suite["expectations"])
    metrics = json.loads((repo / params["paths"]["metrics"]).read_text())
    assert metrics["tabm"]["roc_auc"] > 0.65  # a real model of this table, not noise
    card = (repo / params["paths"]["model_card_md"]).read_text()
    assert "`Attrition` = `Yes`" in card
    for word in ("churn", "customer", "tenure", "total_charges"):
        assert word not in card.lower()


def test_init_rerun_writes_the_same_files(repo, table, tmp_path):
    from retrain.init import run_init

    params = yaml.safe_load((repo / "params.yaml").read_text())
    suite = repo / params["dataset"]["suite"]
    before = suite.read_bytes(), (repo / "data.dvc").read_bytes()
    lines: list[str] = []
    run_init(repo, table, target="Attrition", say=lines.append)
    assert (suite.read_bytes(), (repo / "data.dvc").read_bytes()) == before
    assert not any("removed" in line for line in lines)  # nothing of another dataset left


TELCO_WORDS = ("telco", "churn", "customer", "tenure", "total_charges", "monthly_charges")


def _git(repo: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(cmd, cwd=repo, check=True, capture_output=True, text=True).stdout


def _pr(repo: Path, dest: Path, change: Any) -> Path:
    """A copy of the attrition repo, its pipeline outputs committed on main, and a branch `pr`
    with one commit: `change`, then the raw data pinned again (`dvc commit`)."""
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


def _check_pr(repo: Path) -> tuple[int, str, str, dict[str, Any]]:
    cmd = [sys.executable, "-m", "retrain.cli", "check-pr", "--base", "main", "--no-repro"]
    proc = subprocess.run(cmd, cwd=repo, env=pipeline_env(), capture_output=True, text=True)
    markdown = (repo / "reports" / "pr" / "report.md").read_text()
    report = json.loads((repo / "reports" / "pr" / "report.json").read_text())
    return proc.returncode, markdown, proc.stdout + proc.stderr, report


def test_check_pr_on_attrition_passes_a_generated_batch_and_blocks_broken_data(repo, tmp_path):
    """`retrain check-pr --base main` on the attrition project: a pull request adding a batch
    from `retrain simulate` passes; one that puts text in a numeric column and an unknown
    label in the target is blocked, in one line naming the file and the columns."""
    from typer.testing import CliRunner

    from retrain.cli import app

    def add_batch(head: Path) -> None:
        args = ["simulate", "--out", str(head / "data" / "raw"), "--params"]
        args += [str(head / "params.yaml"), "--batches", "1", "--size", "200", "--seed", "7"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output

    clean = _pr(repo, tmp_path / "clean", add_batch)
    code, markdown, output, report = _check_pr(clean)
    assert code == 0, output
    assert report["status"] in ("passed", "passed with warnings"), report["blocking"]
    files = {f["path"]: f["status"] for f in report["data"]["files"]}
    assert files == {"attrition.csv": "unchanged", "batch-0001.csv": "added"}
    assert [(t["source"], t["failures"]) for t in report["validation"]] == [
        ("data/raw/attrition.csv", []),
        ("data/raw/batch-0001.csv", []),
    ]
    verdict = markdown.splitlines()[1]
    assert verdict.startswith(("## ✅ Passed: ", "## ⚠️ Passed with warnings: ")), verdict
    assert "data: 1 file(s) changed; no drift in `Attrition` or 30 features" in verdict
    drift = report["drift"]
    assert drift["target"]["column"] == "Attrition"
    assert {"MonthlyIncome", "JobRole"} <= set(drift["features"])
    assert "`Attrition`" in markdown and "`MonthlyIncome`" in markdown
    text = (markdown + json.dumps(report)).lower()
    assert not [w for w in TELCO_WORDS if w in text]

    def brk(head: Path) -> None:
        path = head / "data" / "raw" / "attrition.csv"
        df = pd.read_csv(path).astype({"MonthlyIncome": object})
        df.loc[7, "MonthlyIncome"] = "5,993 USD"  # a numeric column now holds text
        df.loc[[3, 11], "Attrition"] = "Maybe"  # a label the suite does not know
        df.to_csv(path, index=False, lineterminator="\n")

    broken = _pr(repo, tmp_path / "broken", brk)
    code, markdown, output, report = _check_pr(broken)
    assert code == 1, output
    assert report["status"] == "blocked"
    (reason,) = [b for b in report["blocking"] if b.startswith("data/raw/attrition.csv: ")]
    assert "\n" not in reason and "MonthlyIncome" in reason and "Attrition" in reason, reason
    verdict = markdown.splitlines()[1]
    assert verdict.startswith("## ❌ Blocked: ")
    assert "`MonthlyIncome`" in verdict and "`Attrition`" in verdict, verdict
    assert '"5,993 USD" (row 7)' in markdown
    assert not report["pipeline"]["reran"]
    text = (markdown + json.dumps(report)).lower()
    assert not [w for w in TELCO_WORDS if w in text]


def _flow(name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from prefect.flows import load_flow_from_entrypoint

    monkeypatch.chdir(REPO)
    entry = {"retrain": "flows/retraining.py:retraining_flow"}.get(
        name, f"flows/{name}.py:{name}_flow"
    )
    return load_flow_from_entrypoint(entry)


def _deployment_runs() -> tuple[Any, Any]:
    """A `retrain/retrain` deployment with no worker (runs stay queued), and a reader."""
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

    return deployment_id, runs


def test_flows_simulate_monitor_and_predict(repo, tmp_path, monkeypatch, prefect_harness):
    """The retrain flow, then generated batches through the monitor flow (ingest, drift, the
    retrain trigger), then the predict flow with the promoted model; on a real Prefect server
    (the session's: a second harness nested in it would send the project lock's lease renewals
    to the other server)."""
    from typer.testing import CliRunner

    from retrain.cli import app
    from retrain.config import load_params_at

    # No `dataset` parameter: the flow runs whatever params.yaml configures.
    state = _flow("retrain", monkeypatch)(repo=str(repo), return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert not any(result["stages"].values())  # dvc repro already ran: all skipped
    assert result["gate"] == "first" and result["model"]["prod"] == "v1.0.0"

    landing = repo / "data" / "landing"
    base = ["simulate", "--out", str(landing), "--params", str(repo / "params.yaml")]
    runner = CliRunner()
    calm = runner.invoke(app, [*base, "--batches", "1", "--size", "400", "--seed", "1"])
    flip = runner.invoke(
        app,
        [
            *base,
            "--batches",
            "1",
            "--size",
            "400",
            "--seed",
            "2",
            "--first-batch",
            "2",
            "--drift",
            "flip",
            "--amount",
            "0.5",
            "--prefix",
            "flip",
        ],
    )
    assert calm.exit_code == 0 and flip.exit_code == 0, calm.output + flip.output
    params = load_params_at(repo)
    features = params.dataset.features
    original = pd.read_csv(repo / "data" / "raw" / "attrition.csv")
    seen = set(original[features].astype(str).itertuples(index=False, name=None))
    for file in landing.glob("*.csv"):
        rows = set(pd.read_csv(file)[features].astype(str).itertuples(index=False, name=None))
        assert not rows & seen  # generated, never a copy of a table row
    to_score = pd.read_csv(landing / "batch-0001.csv").drop(columns=["Attrition"])
    score_csv = repo / "data" / "predict" / "score.csv"  # the flow reads only data folders
    score_csv.parent.mkdir(parents=True, exist_ok=True)
    to_score.to_csv(score_csv, index=False)

    _, runs = _deployment_runs()
    records = _flow("monitor", monkeypatch)(repo=str(repo))
    by_name = {Path(r["source"]).name: r for r in records}
    calm_rec, flip_rec = by_name["batch-0001.csv"], by_name["flip-0002.csv"]
    assert calm_rec["status"] == flip_rec["status"] == "accepted", records
    assert calm_rec["drift"]["tripped"] is False, calm_rec["drift"]
    assert flip_rec["drift"]["tripped"] is True
    assert "target drift" in " ".join(flip_rec["drift"]["reasons"])
    (run,) = runs()
    assert str(run.id) == flip_rec["retrain_run"] and run.parameters["reason"] == "drift"

    out = _flow("predict", monkeypatch)(input_path=str(score_csv), repo=str(repo))
    scored = pd.read_parquet(out)
    assert len(scored) == 400 and scored["probability"].between(0, 1).all()
    assert set(scored["registry_version"]) == {"attrition-model@v1.0.0"}
