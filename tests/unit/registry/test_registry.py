"""Records and the GTO registry on a small git repository (no pipeline run): a record is
published whole or not at all, versions and prod are GTO tags, rollback hands prod back."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from retrain.config import Params, load_params_at
from retrain.infra.git import GitError, identity_env
from retrain.registry import record, versions
from retrain.registry.gate import GateResult
from tests.conftest import REPO, telco_params

NAME = "churn-model"


def sh(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


def lock_text(onnx_md5: str) -> str:
    return (
        "schema: '2.0'\nstages:\n  train:\n    cmd: python -m retrain.stages.train\n"
        f"    outs:\n    - path: models/model/model.onnx\n      md5: {onnx_md5}\n"
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    for name in (".gitignore", "dvc.yaml"):
        shutil.copy2(REPO / name, root / name)
    (root / "params.yaml").write_text(yaml.safe_dump(telco_params(), sort_keys=False))
    (root / "src").mkdir()
    (root / "src" / "code.py").write_text("x = 1\n")
    (root / "data.dvc").write_text("outs:\n- md5: aaaa.dir\n  path: data/raw\n")
    sh(root, "init", "-q", "-b", "main")
    sh(root, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    sh(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return root


def fake_run(root: Path, params: Params, onnx_md5: str, auc: float) -> None:
    """What the pipeline would leave behind: dvc.lock, metrics, tuned params."""
    (root / "dvc.lock").write_text(lock_text(onnx_md5))
    metrics = {"threshold": 0.4, "tabm": {"roc_auc": auc, "ece": 0.02}}
    params.paths.metrics.parent.mkdir(parents=True, exist_ok=True)
    params.paths.metrics.write_text(json.dumps(metrics))
    params.paths.best_params.parent.mkdir(parents=True, exist_ok=True)
    params.paths.best_params.write_text(json.dumps({"params": {"lr": auc}}))


def gate_result(decision: str) -> GateResult:
    promote = decision in ("first", "promoted")
    return GateResult(decision, promote, [decision], "roc_auc", 0.002, 100, {"roc_auc": 0.8})  # type: ignore[arg-type]


def retrain(root: Path, decision: str, onnx_md5: str, auc: float = 0.8) -> dict:
    params = load_params_at(root)
    start = record.begin(root, params, "manual", record.new_run_id())
    fake_run(root, params, onnx_md5, auc)
    champion = versions.in_stage(root, NAME, "prod")
    return record.write(
        root,
        params,
        start,
        gate=gate_result(decision),
        champion=champion,
        warm_start={"champion": None, "params": None},
        stages={"train": True},
    )


def test_a_record_is_a_commit_with_its_tags_and_the_checkout_stays_clean(repo):
    before = sh(repo, "rev-parse", "HEAD").strip()
    rec = retrain(repo, "first", "a" * 32, auc=0.81)
    head = sh(repo, "rev-parse", "HEAD").strip()
    assert sh(repo, "rev-parse", "HEAD~1").strip() == before
    assert sh(repo, "rev-parse", f"run/{rec['run_id']}^{{commit}}").strip() == head
    assert sh(repo, "cat-file", "-t", f"run/{rec['run_id']}").strip() == "tag"  # annotated
    tags = {f"run/{rec['run_id']}", f"{NAME}@v1.0.0", f"{NAME}#prod#1"}
    assert set(sh(repo, "tag").split()) == tags
    committed = set(sh(repo, "show", "--name-only", "--format=", "HEAD").split())
    assert committed == {"dvc.lock", "metrics/evaluate.json", "registry/run.json"}
    assert sh(repo, "status", "--porcelain", "--untracked-files=no") == ""
    assert json.loads((repo / "registry/run.json").read_text()) == rec
    assert rec["code_revision"] == before and rec["metrics"]["roc_auc"] == 0.81
    assert rec["model"] == {
        "name": NAME,
        "version": "v1.0.0",
        "registered": True,
        "promoted": True,
        "prod": "v1.0.0",
    }
    prod = versions.in_stage(repo, NAME, "prod")
    assert prod is not None and (prod.version, prod.commit) == ("v1.0.0", head)


def test_the_record_names_the_pinned_holdouts_version(repo):
    # Issue 27: the gate scored the pinned evaluation set too; the record says which version.
    assert "holdout" not in retrain(repo, "first", "a" * 32)["data"]  # none yet: as before
    md5 = "e" * 32 + ".dir"
    (repo / "holdout.dvc").write_text(f"outs:\n- md5: {md5}\n  path: data/holdout\n")
    rec = retrain(repo, "rejected", "b" * 32)
    assert rec["data"]["holdout"] == {"pin": "holdout.dvc", "md5": md5}
    # The record commit holds that pin: a replay pulls exactly that evaluation set.
    pinned = sh(repo, "show", f"run/{rec['run_id']}:holdout.dvc")
    assert md5 in pinned


def test_gto_show_lists_versions_and_prod(repo):
    retrain(repo, "first", "a" * 32)
    retrain(repo, "rejected", "b" * 32)
    gto = Path(sys.executable).parent / "gto"
    out = subprocess.run(
        [str(gto), "show", NAME, "--json"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    shown = {v["version"]: v for v in json.loads(out)}
    assert set(shown) == {"v1.0.0", "v2.0.0"}
    assert [s["stage"] for s in shown["v1.0.0"]["stages"]] == ["prod"]
    assert shown["v2.0.0"]["stages"] == []


def test_rejected_challenger_is_registered_but_prod_stays(repo):
    retrain(repo, "first", "a" * 32)
    rec = retrain(repo, "rejected", "b" * 32)
    assert rec["model"]["version"] == "v2.0.0" and not rec["model"]["promoted"]
    assert rec["model"]["prod"] == "v1.0.0" and rec["champion"]["version"] == "v1.0.0"
    assert versions.in_stage(repo, NAME, "prod").version == "v1.0.0"  # type: ignore[union-attr]
    assert [v.version for v in versions.registered(repo, NAME)] == ["v1.0.0", "v2.0.0"]


def test_an_unchanged_model_is_recorded_but_not_registered(repo):
    retrain(repo, "first", "a" * 32)
    rec = retrain(repo, "unchanged", "a" * 32)
    assert rec["model"]["version"] == "v1.0.0" and not rec["model"]["registered"]
    assert len(record.list_runs(repo, load_params_at(repo))) == 2
    assert [v.version for v in versions.registered(repo, NAME)] == ["v1.0.0"]


def test_rollback_hands_prod_back_version_by_version(repo):
    retrain(repo, "first", "a" * 32)
    retrain(repo, "promoted", "b" * 32)
    retrain(repo, "rejected", "c" * 32)
    retrain(repo, "promoted", "d" * 32)
    env = identity_env(repo)
    assert versions.in_stage(repo, NAME, "prod").version == "v4.0.0"  # type: ignore[union-attr]
    # v3 was never in prod: rollback skips it.
    assert versions.rollback(repo, NAME, "prod", env) == ("v4.0.0", "v2.0.0")
    assert versions.rollback(repo, NAME, "prod", env) == ("v2.0.0", "v1.0.0")
    with pytest.raises(versions.RegistryError, match="first version ever in prod"):
        versions.rollback(repo, NAME, "prod", env)
    # The champion of the next retrain is what prod holds now.
    rec = retrain(repo, "rejected", "e" * 32)
    assert rec["champion"]["version"] == "v1.0.0" and rec["model"]["version"] == "v5.0.0"


def test_a_failed_publish_leaves_no_record_and_no_registry_change(repo):
    retrain(repo, "first", "a" * 32)
    params = load_params_at(repo)
    start = record.begin(repo, params, "manual", "20260101T000000Z-dead")
    fake_run(repo, params, "b" * 32, 0.9)
    sh(repo, "tag", "run/20260101T000000Z-dead")  # someone took the name: the transaction fails
    head, tags = sh(repo, "rev-parse", "HEAD"), set(sh(repo, "tag").split())
    run_json = (repo / "registry/run.json").read_text()
    with pytest.raises(GitError):
        record.write(
            repo,
            params,
            start,
            gate=gate_result("promoted"),
            champion=versions.in_stage(repo, NAME, "prod"),
            warm_start={},
            stages={},
        )
    assert sh(repo, "rev-parse", "HEAD") == head
    assert set(sh(repo, "tag").split()) == tags  # no v2, no prod assignment
    assert (repo / "registry/run.json").read_text() == run_json
    assert versions.in_stage(repo, NAME, "prod").version == "v1.0.0"  # type: ignore[union-attr]


def test_a_retrain_refuses_uncommitted_code_but_not_its_own_files(repo):
    params = load_params_at(repo)
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text() + "\n")
    (repo / "data.dvc").write_text("outs:\n- md5: bbbb.dir\n  path: data/raw\n")
    record.begin(repo, params, "manual", "x")  # the pipeline's own files may differ
    (repo / "src" / "code.py").write_text("x = 2\n")
    with pytest.raises(record.DirtyCheckout, match="src/code.py"):
        record.begin(repo, params, "manual", "x")


def test_find_run_names_recent_runs_when_unknown(repo):
    rec = retrain(repo, "first", "a" * 32)
    params = load_params_at(repo)
    assert record.find_run(repo, params, f"run/{rec['run_id']}")["run_id"] == rec["run_id"]
    with pytest.raises(record.RetrainError, match=rec["run_id"]):
        record.find_run(repo, params, "nope")


def test_the_record_is_built_from_what_was_read_without_git(tmp_path):
    # record.write was one 108-line function (issue 24): building the record is now pure,
    # apart from the files it reads (gather) and the git steps that publish it (publish).
    files = record.RunFiles(
        lock_text=lock_text("a" * 32),
        metrics={"threshold": 0.4, record.OUR_MODEL: {"roc_auc": 0.83, "ece": 0.02}},
        tuned={"params": {"lr": 0.01}},
        data={"pin": "data.dvc", "md5": "d" * 32, "batches": ["b1.csv"]},
        params_md5="p" * 32,
        requirements_lock={"file": "requirements.lock", "md5": None},
        device="cpu",
    )
    start = record.RunStart("20260101T000000Z-beef", "drift", "2026-01-01T00:00:00+00:00", "c0")
    gate = gate_result("promoted")
    champion = versions.ModelVersion(NAME, "v1.0.0", "f" * 40)
    context = {"finished_at": "later", "environment": {"python": "3.11"}, "overrides": {}}
    rec = record.build(
        start,
        files,
        model_name=NAME,
        gate=gate,
        champion=champion,
        register="v2.0.0",
        warm_start={},
        stages={"train": True},
        context=context,
    )
    assert rec["metrics"] == {"threshold": 0.4, "roc_auc": 0.83, "ece": 0.02}
    assert rec["model"] == {
        "name": NAME,
        "version": "v2.0.0",
        "registered": True,
        "promoted": True,
        "prod": "v2.0.0",
    }
    assert rec["gate"] == gate.to_dict() and rec["overrides"] is None
    assert rec["artifacts"] == {"models/model/model.onnx": "a" * 32}
    assert record.summary(rec).endswith(f"{NAME} v2.0.0 promoted to prod")
    assert not any(tmp_path.iterdir())  # nothing written anywhere


def test_no_function_of_the_gate_and_records_is_longer_than_a_reader_can_hold():
    import ast

    folder = REPO / "src" / "retrain" / "registry"
    mine = ["gate", "record", "publish", "evidence", "overrides", "champion", "reproduce"]
    long = []
    for name in mine:
        tree = ast.parse((folder / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > 60:  # type: ignore[operator]
                long.append(f"{name}.{node.name}")
    assert long == []


@pytest.mark.parametrize(
    ("evaluate", "expected"),
    [
        # Binary: the decision threshold first, as every binary record has it.
        (
            {"threshold": 0.4, record.OUR_MODEL: {"roc_auc": 0.83}, "logreg": {"roc_auc": 0.8}},
            {"threshold": 0.4, "roc_auc": 0.83},
        ),
        # Multiclass and regression models have no threshold: evaluate writes none.
        (
            {record.OUR_MODEL: {"log_loss": 0.61, "roc_auc_ovr": 0.88}, "n_test": 866},
            {"log_loss": 0.61, "roc_auc_ovr": 0.88},
        ),
        (
            {record.OUR_MODEL: {"rmse": 34.2, "mae": 23.9, "r2": 0.31}},
            {"rmse": 34.2, "mae": 23.9, "r2": 0.31},
        ),
    ],
)
def test_the_record_holds_the_tasks_metrics(evaluate, expected):
    assert record.our_metrics(evaluate) == expected
    assert list(record.our_metrics(evaluate)) == list(expected)  # and in the file's order
