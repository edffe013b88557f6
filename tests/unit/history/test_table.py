"""`retrain runs`: one row per recorded retrain with its trigger, data and model versions,
our metric beside both baselines and the champion's on the same holdout, and the gate."""

from __future__ import annotations

import subprocess
import sys

from retrain.config import load_params_at
from retrain.history.table import HEADER, history, ours
from tests.conftest import pipeline_env


def test_our_metrics_are_read_under_either_key():
    assert ours({"mlp": {"roc_auc": 0.8}}) == {"roc_auc": 0.8}
    assert ours({"tabm": {"roc_auc": 0.9}, "logreg": {}}) == {"roc_auc": 0.9}
    assert ours({"logreg": {"roc_auc": 0.7}}) == {}


def test_history_has_every_run_with_its_baselines_and_champion(three_runs):
    rows = history(three_runs.repo, load_params_at(three_runs.repo))
    assert [r.run_id for r in rows] == [rec["run_id"] for rec in three_runs.records]
    assert [r.reason for r in rows] == ["manual", "drift", "schedule"]
    assert [r.model for r in rows] == ["v1.0.0", "v2.0.0", "v3.0.0"]
    assert [r.decision for r in rows] == ["first", "promoted", "rejected"]
    assert [r.ours for r in rows] == [0.80, 0.84, 0.82]
    # The baselines come from each record's commit (metrics/evaluate.json), not the workspace.
    assert [r.logreg for r in rows] == [0.79, 0.83, 0.81]
    assert [r.lightgbm for r in rows] == [0.795, 0.835, 0.815]
    assert [r.holdout_champion for r in rows] == [None, 0.79, 0.838]
    assert [r.champion for r in rows] == [None, "v1.0.0", "v2.0.0"]
    assert rows[1].trigger == "drift on b1.csv (monitor run monitor-b1)"
    assert rows[2].why == "rejected: AUC 0.82"


def test_retrain_runs_prints_the_table(three_runs):
    out = subprocess.run(
        [sys.executable, "-m", "retrain.cli", "runs", "--html"],
        cwd=three_runs.repo,
        env={**pipeline_env(), "PREFECT_UI_URL": "http://127.0.0.1:4200"},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    header = next(ln for ln in lines if ln.startswith("run "))
    for column in HEADER:
        assert column in header, column
    rows = [ln for ln in lines if ln[:8].isdigit()]
    assert [ln.split()[0] for ln in rows] == [r["run_id"] for r in three_runs.records]
    first, second, third = rows
    assert "manual" in first and "first" in first and "0.8000  0.7900  0.7950" in first
    assert "drift on b1.csv" in second and "0.7900 v1.0.0" in second and "<- prod" in second
    assert "rejected: AUC 0.82" in third and "0.8380 v2.0.0" in third
    page = load_params_at(three_runs.repo).paths.model_history
    assert f"model history page: {page}" in out.stdout and page.is_file()
