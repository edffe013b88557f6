"""The replay's comparison: any changed hash, metric or tuned value is a difference; the
model card (which names its git revision) is shown but not compared."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from retrain.config import load_params_at
from retrain.model_key import RENAME_NOTE
from retrain.registry.reproduce import Replay, compare, report
from tests.conftest import REPO

LOCK = """schema: '2.0'
stages:
  train:
    cmd: python -m retrain.stages.train
    outs:
    - path: models/model/model.onnx
      md5: {onnx}
    - path: models/model/model_card.json
      md5: {card}
"""
METRICS = {"threshold": 0.4, "tabm": {"roc_auc": 0.84, "ece": 0.02}}
TUNED = {"params": {"lr": 0.001, "hidden_dim": 32}, "best_value": 0.85}


def clone(tmp_path: Path) -> Path:
    root = tmp_path / "clone"
    root.mkdir()
    shutil.copy2(REPO / "params.yaml", root / "params.yaml")
    params = load_params_at(root)
    (root / "dvc.lock").write_text(LOCK.format(onnx="a" * 32, card="c" * 32))
    params.paths.metrics.parent.mkdir(parents=True)
    params.paths.metrics.write_text(json.dumps(METRICS))
    params.paths.best_params.parent.mkdir(parents=True)
    params.paths.best_params.write_text(json.dumps(TUNED))
    return root


def replay(root: Path, lock: str, metrics: dict, tuned: dict) -> Replay:
    result = Replay("r1", root)
    result.rows = compare(load_params_at(root), root, lock, metrics, tuned, result.notes)
    return result


def test_identical_when_everything_matches_except_the_model_card(tmp_path):
    root = clone(tmp_path)
    result = replay(root, LOCK.format(onnx="a" * 32, card="d" * 32), METRICS, TUNED)
    assert result.identical
    text = report(result)
    assert "models/model/model.onnx" in text and "aaaaaaaaaaaa   aaaaaaaaaaaa   same" in text
    assert "not compared" in text and text.rstrip().endswith("matches the record")


def test_a_changed_model_hash_metric_or_tuned_value_is_a_difference(tmp_path):
    root = clone(tmp_path)
    lock = LOCK.format(onnx="b" * 32, card="c" * 32)
    worse = {"threshold": 0.4, "tabm": {"roc_auc": 0.8399, "ece": 0.02}}
    tuned = {"params": {"lr": 0.002, "hidden_dim": 32}, "best_value": 0.85}
    result = replay(root, lock, worse, tuned)
    assert not result.identical
    assert {r.name for r in result.differences} == {
        "models/model/model.onnx",
        "tabm.roc_auc",
        "params.lr",
    }
    assert "DIFFERENT: 3 of" in report(result)


# A run recorded before the model key was renamed: its commit's metrics, and what its own code
# reproduces in the replay's clone, both say `mlp`.
OLD_METRICS = {"threshold": 0.4, "mlp": {"roc_auc": 0.84, "ece": 0.02}}


def test_a_record_from_before_the_rename_replays_and_says_so(tmp_path):
    root = clone(tmp_path)
    load_params_at(root).paths.metrics.write_text(json.dumps(OLD_METRICS))
    result = replay(root, LOCK.format(onnx="a" * 32, card="c" * 32), OLD_METRICS, TUNED)
    assert result.identical
    names = {r.name for r in result.rows if r.kind == "metric"}
    assert names == {"threshold", "tabm.roc_auc", "tabm.ece"}
    assert result.notes == [RENAME_NOTE]
    text = report(result)
    assert "note: record from before the rename: key mlp read as tabm" in text
    assert text.rstrip().endswith("matches the record")


def test_an_old_record_against_a_renamed_reproduction_compares_metric_by_metric(tmp_path):
    root = clone(tmp_path)  # the clone's code writes `tabm`, the record says `mlp`
    worse = {"threshold": 0.4, "mlp": {"roc_auc": 0.8399, "ece": 0.02}}
    result = replay(root, LOCK.format(onnx="a" * 32, card="c" * 32), worse, TUNED)
    assert {r.name for r in result.differences} == {"tabm.roc_auc"}
    assert result.notes == [RENAME_NOTE]


def test_a_record_written_after_the_rename_carries_no_note(tmp_path):
    root = clone(tmp_path)
    result = replay(root, LOCK.format(onnx="a" * 32, card="c" * 32), METRICS, TUNED)
    assert result.notes == [] and "note:" not in report(result)


def test_the_pinned_holdout_the_gate_scored_is_checked_against_what_was_pulled(tmp_path):
    import subprocess
    import sys

    from retrain.infra import dvc
    from retrain.registry.reproduce import holdout_rows

    root = clone(tmp_path)
    params = load_params_at(root)
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=root, check=True)
    params.paths.holdout.mkdir(parents=True)
    (params.paths.holdout / "b-1.csv").write_text("row_id,y\nr1,1\n")
    pulled = dvc.workspace_hash(root, params.paths.holdout)
    assert pulled is not None and pulled.endswith(".dir")
    assert holdout_rows({"data": {"md5": "d" * 32}}, params, root) == []  # an older record
    same = Replay("r1", root, holdout_rows({"data": {"holdout": {"md5": pulled}}}, params, root))
    assert same.identical and "holdout.dvc" in report(same)
    other = {"data": {"holdout": {"md5": "e" * 32 + ".dir"}}}
    differs = Replay("r1", root, holdout_rows(other, params, root))
    assert [r.name for r in differs.differences] == ["holdout.dvc"]
    assert "DIFFERENT" in report(differs)
