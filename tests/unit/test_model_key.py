"""retrain.model_key: our model's key is `tabm`, its name comes from its parameters, and
metrics written before the rename (`mlp`) are read as `tabm`, in the one place that maps them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from retrain.config import ModelParams, load_params
from retrain.model_key import (
    OURS,
    RENAME_NOTE,
    network_name,
    upgrade_metrics,
    upgrade_metrics_diff,
)
from retrain.prcheck.pipeline import metrics_diff
from tests.conftest import REPO

BASE = dict(hidden_dim=64, n_layers=2, dropout=0.1, lr=0.002, weight_decay=0.0, batch_size=256)
OLD = {"threshold": 0.4, "n_test": 1409, "mlp": {"roc_auc": 0.84}, "logreg": {"roc_auc": 0.8}}


def test_the_key_and_the_name_say_what_the_network_is():
    assert OURS == "tabm"
    shipped = load_params(REPO / "params.yaml").model
    assert network_name(shipped) == "TabM-mini + PLE"  # params.yaml: k 32, tabm-mini, ple
    assert network_name(ModelParams(**BASE, k=8, arch="tabm")) == "TabM"
    assert network_name(ModelParams(**BASE, k=8), embeddings=False) == "TabM-mini"
    assert network_name(ModelParams(**BASE, k=1, num_embeddings="ple")) == "MLP + PLE"


def test_an_old_metrics_file_is_read_with_the_new_key():
    metrics, renamed = upgrade_metrics(OLD)
    assert renamed and metrics["tabm"] == {"roc_auc": 0.84} and "mlp" not in metrics
    assert metrics["logreg"] == OLD["logreg"] and metrics["threshold"] == 0.4
    again, renamed_again = upgrade_metrics(metrics)
    assert again == metrics and not renamed_again  # a new file is left as it is
    assert RENAME_NOTE == "record from before the rename: key mlp read as tabm"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_dvc_metrics_diff_across_the_rename_pairs_old_and_new(tmp_path):
    """A pull request whose base wrote `mlp` and whose head writes `tabm`: DVC reports each
    metric twice, half empty; the PR check reads one row with both sides."""
    repo = tmp_path / "repo"
    (repo / "metrics").mkdir(parents=True)
    _git(repo, "init", "-q")
    subprocess.run(["dvc", "init", "-q"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text("metrics:\n  - metrics/evaluate.json\n")
    path = repo / "metrics" / "evaluate.json"
    path.write_text(json.dumps(OLD))
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    new = {**upgrade_metrics(OLD)[0], "tabm": {"roc_auc": 0.85}}
    path.write_text(json.dumps(new))
    rows = metrics_diff(repo, "HEAD")
    assert not [k for k in rows if ":mlp." in k]
    auc = rows["metrics/evaluate.json:tabm.roc_auc"]
    assert auc["old"] == 0.84 and auc["new"] == 0.85 and abs(auc["diff"] - 0.01) < 1e-9
    assert rows["metrics/evaluate.json:logreg.roc_auc"]["old"] == 0.8


def test_a_diff_without_old_keys_is_unchanged():
    diff = {"m.json:tabm.f1": {"old": 0.6, "new": 0.61, "diff": 0.01}}
    assert upgrade_metrics_diff(diff) == (diff, False)
