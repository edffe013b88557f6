"""A second public table end to end, configured by `retrain init` alone: IBM HR attrition
(1,470 rows, target `Attrition`, no id column). `dvc repro` with no edit, then generated
batches, ingest, the drift check and scoring with the promoted model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import attrition_table, init_repo, pipeline_env, record_workspace_as_prod

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
    assert metrics["mlp"]["roc_auc"] > 0.65  # a real model of this table, not noise
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


def test_simulate_ingest_drift_and_predict(repo, tmp_path):
    from typer.testing import CliRunner

    from retrain.cli import app
    from retrain.config import load_params_at
    from retrain.data.io import read_file
    from retrain.ingest import ingest_file
    from retrain.registry.serving import prod_model
    from retrain.scoring import score_frame
    from retrain.stages.drift import batch_drift

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
        ],
    )
    assert calm.exit_code == 0 and flip.exit_code == 0, calm.output + flip.output

    params = load_params_at(repo)
    original = pd.read_csv(repo / "data" / "raw" / "attrition.csv")
    features = params.dataset.features
    seen = set(original[features].astype(str).itertuples(index=False, name=None))
    results = [ingest_file(f, params) for f in sorted(landing.glob("*.csv"))]
    assert [r.status for r in results] == ["accepted", "accepted"], [r.reason for r in results]
    batches = [read_file(Path(r.destination)) for r in results]
    for batch in batches:
        rows = set(batch[features].astype(str).itertuples(index=False, name=None))
        assert not rows & seen  # generated, never a copy of a table row

    calm_drift, flip_drift = (batch_drift(b, params) for b in batches)
    assert calm_drift["gate"]["tripped"] is False, calm_drift["gate"]
    assert flip_drift["gate"]["tripped"] is True
    assert "target drift" in " ".join(flip_drift["gate"]["reasons"])

    record_workspace_as_prod(repo)
    served = prod_model(repo, params)
    scored = score_frame(batches[0].drop(columns=[params.dataset.target]), params, served)
    assert len(scored) == 400
    assert scored["probability"].between(0, 1).all()
