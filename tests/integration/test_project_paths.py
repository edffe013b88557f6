"""Paths renamed in params.yaml reach every reader (the Project carries them), and a flow file
runs as a plain script against a checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from retrain import PARAMS_FILE
from tests.conftest import REPO, copy_repo, pipeline_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def git(repo: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(cmd, cwd=repo, check=True, capture_output=True, text=True).stdout


def rename_path(repo: Path, key: str, new: str) -> Path:
    """Point paths.<key> at `new` in params.yaml (moving what is there); the old path."""
    raw = yaml.safe_load((repo / PARAMS_FILE).read_text())
    old = repo / raw["paths"][key]
    raw["paths"][key] = new
    (repo / PARAMS_FILE).write_text(yaml.safe_dump(raw, sort_keys=False))
    if old.exists():
        (repo / new).parent.mkdir(parents=True, exist_ok=True)
        old.rename(repo / new)
    return old


def test_pr_report_metrics_table_follows_a_renamed_metrics_file(trained_repo, tmp_path):
    """paths.metrics renamed (base and head alike): `dvc metrics diff` keys the metrics by the
    new file, and the report's test-metrics table still has a row per model (it emptied,
    silently, while the report looked for metrics/evaluate.json)."""
    from retrain.prcheck.check import run_check
    from retrain.prcheck.render import render_markdown

    repo = copy_repo(trained_repo, tmp_path / "repo")
    old = rename_path(repo, "metrics", "results/test_scores.json")
    assert old == repo / "metrics" / "evaluate.json"
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base: metrics renamed")
    check = run_check(repo, "main", repo / "reports" / "pr", rerun=False)
    assert check.metrics_file == "results/test_scores.json"
    assert "results/test_scores.json:tabm.roc_auc" in check.pipeline.metrics_diff
    markdown = render_markdown(check)
    assert "Test metrics, base → head" in markdown, markdown
    rows = [line for line in markdown.splitlines() if line.startswith(("| tabm ", "| logreg "))]
    assert len(rows) == 2, markdown


def test_monitor_flow_runs_as_a_script_on_a_renamed_landing(
    trained_repo, tmp_path, prefect_harness
):
    """`python flows/monitor.py <repo>`: the flow file runs on its own (here against the
    session's temporary Prefect server) and looks for batches where params.yaml says."""
    from prefect.settings import PREFECT_API_URL

    repo = copy_repo(trained_repo, tmp_path / "repo")
    rename_path(repo, "landing", "inbox/new")
    env = {**pipeline_env(), "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    proc = subprocess.run(
        [sys.executable, str(REPO / "flows" / "monitor.py"), str(repo)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert f"no new batch in {repo / 'inbox' / 'new'}" in output, output
    assert "Completed" in output
