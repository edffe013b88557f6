"""`dvc repro` of the real pipeline on a small config, in a temporary git repository.

The first run is the session's `trained_repo` (tests/conftest.py): these tests work on copies
of it, so the suite pays for one plain `dvc repro` of the small pipeline, not one per module.

That a second run of every stage, in another directory, gives the same bytes is proven where
such a run happens anyway: `retrain reproduce` (tests/integration/test_records.py) forces every
stage in a fresh clone and compares every output hash in dvc.lock, and that test compares the
model cards too, less the git revision they name."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from retrain.config import ModelParams
from tests.conftest import copy_repo, first_repro_output, pipeline_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STAGES = ("validate", "prepare", "tune", "train", "evaluate", "drift", "report")
ARTIFACTS = (
    "models/model/model.ckpt",
    "models/model/model.onnx",
    "data/prepared/preprocessor.json",
)
METRICS = ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "log_loss", "brier")
HYPERPARAMS = {"hidden_dim", "n_layers", "dropout", "lr", "weight_decay", "batch_size"}


_env = pipeline_env


def dvc(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env=_env(),
    )
    if check and proc.returncode != 0:
        pytest.fail(f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def ran(output: str) -> list[str]:
    return [s for s in STAGES if f"Running stage '{s}'" in output]


@pytest.fixture(scope="module")
def repo(tmp_path_factory, trained_repo: Path) -> Path:
    """A copy of the session's pipeline repo, after its one plain `dvc repro`; tests here
    change it (params, raw data, the cache)."""
    return copy_repo(trained_repo, tmp_path_factory.mktemp("pipeline") / "repo")


@pytest.fixture(scope="module")
def first_run(trained_repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["dvc", "repro"], 0, first_repro_output(trained_repo), "")


def test_repro_runs_every_stage_and_writes_outputs(repo, first_run):
    assert ran(first_run.stdout) == list(STAGES)
    metrics = json.loads((repo / "metrics" / "evaluate.json").read_text())
    for model in ("tabm", "logreg", "lightgbm"):
        for key in METRICS:
            assert 0 <= metrics[model][key] <= 10, (model, key)
    assert metrics["tabm"]["roc_auc"] > 0.8
    for rel in ARTIFACTS:
        assert (repo / rel).stat().st_size > 0
    card = json.loads((repo / "models/model/model_card.json").read_text())
    pin = yaml.safe_load((repo / "data.dvc").read_text())["outs"][0]["md5"]
    assert card["data"]["md5"] == pin
    assert len(card["git_revision"]) >= 40
    assert set(card["params"]) == HYPERPARAMS | set(ModelParams.model_fields)
    assert (repo / "reports/validation/data_docs/index.html").exists()


def test_second_repro_is_a_noop(repo, first_run):
    out = dvc(repo, "repro").stdout
    assert ran(out) == []
    assert dvc(repo, "status").stdout.strip().startswith("Data and pipelines are up to date")


def test_plots_render(repo, first_run):
    out = dvc(repo, "plots", "show", "-o", "dvc_plots").stdout
    html = (repo / "dvc_plots" / "index.html").read_text()
    for title in ("ROC on the test split", "Precision-recall", "Calibration", "Confusion"):
        assert title in html, out


def _set_param(repo: Path, section: str, key: str, value: object) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params[section][key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_param_change_reruns_only_that_stage_and_after(repo, first_run):
    _set_param(repo, "evaluate", "calibration_bins", 5)
    assert ran(dvc(repo, "repro").stdout) == ["evaluate", "report"]
    # Fewer epochs change the weights, so evaluate (which depends on model.onnx) follows.
    _set_param(repo, "train", "max_epochs", 2)
    assert ran(dvc(repo, "repro").stdout) == ["train", "evaluate", "drift", "report"]
    # A report setting reruns the report alone.
    _set_param(repo, "report", "top_features", 5)
    assert ran(dvc(repo, "repro").stdout) == ["report"]


def test_broken_raw_table_fails_validate_and_nothing_downstream_runs(repo, first_run):
    raw = repo / "data" / "raw" / "telco_churn.csv"
    saved = raw.read_bytes()
    model = (repo / "models/model/model.onnx").read_bytes()
    try:
        pd.read_csv(raw).drop(columns=["contract"]).to_csv(raw, index=False)
        proc = dvc(repo, "repro", check=False)
        assert proc.returncode != 0
        assert ran(proc.stdout) == ["validate"]
        # params.yaml is checked against the table first: one line, file, key and column.
        assert (
            "validate: params.yaml: dataset.categorical: column 'contract' is not a column of "
            "data/raw/telco_churn.csv"
        ) in proc.stderr
        assert (repo / "models/model/model.onnx").read_bytes() == model
    finally:
        # `dvc repro` re-pins a changed data source (data.dvc) before validate runs; undo both.
        raw.write_bytes(saved)
        subprocess.run(["git", "checkout", "--", "data.dvc"], cwd=repo, check=True)


def test_fetch_rebuilds_pinned_data_offline_and_detects_tampering(repo, first_run, tmp_path):
    def fetch() -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "retrain.cli", "data", "fetch"]
        return subprocess.run(cmd, cwd=repo, env=_env(), capture_output=True, text=True)

    # An empty remote (an earlier test may have pushed the table to the shared one).
    remote = ["remote", "modify", "--local", "local", "url", str(tmp_path / "empty-remote")]
    subprocess.run([sys.executable, "-m", "dvc", *remote], cwd=repo, env=_env(), check=True)

    shutil.rmtree(repo / "data" / "raw")
    shutil.rmtree(repo / ".dvc" / "cache", ignore_errors=True)
    out = fetch()
    assert out.returncode == 0, out.stderr
    assert "rebuilt offline, matches data.dvc" in out.stdout
    # Now the remote holds it: a fresh workspace pulls instead of rebuilding.
    shutil.rmtree(repo / "data" / "raw")
    out = fetch()
    assert "pulled from the DVC remote" in out.stdout, out.stderr
    raw = repo / "data" / "raw" / "telco_churn.csv"
    raw.write_text(raw.read_text().replace("Month-to-month", "Monthly", 1))
    out = fetch()
    assert out.returncode == 1
    assert "does not match" in out.stderr and "data.dvc" in out.stderr
