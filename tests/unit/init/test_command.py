"""`retrain init` end to end in a DVC repo under tmp_path: the params.yaml and suite it writes
for Telco, then for IBM attrition, are the golden ones (what HEAD's init.py wrote, save the
user comment it dropped); a likely leak is printed with its score and left out, `--keep`
keeps it; every function of the package fits on a screen."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from retrain.cli import app
from retrain.init import profile, run_init
from retrain.init.command import draft
from tests.conftest import pipeline_env
from tests.unit.init.conftest import ALL_TARGETS, GOLDEN
from tests.unit.init.test_leaks import with_churn_copy
from tests.unit.init.test_params_edit import init_sources


@pytest.fixture
def repo(tmp_path) -> Path:
    """The shipped params.yaml (as of the golden files), a pin, an empty DVC repo."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "params.yaml").write_text((GOLDEN / "params.yaml").read_text())
    (root / "data.dvc").write_text("outs:\n- path: data/raw\n")
    cmd = [sys.executable, "-m", "dvc", "init", "-q", "--no-scm"]
    subprocess.run(cmd, cwd=root, env=pipeline_env(), check=True)
    return root


@pytest.mark.parametrize("name", sorted(ALL_TARGETS))
def test_drafts_are_the_golden_files(tables, name):
    """What init writes for the table (checked by the config first): the golden bytes, for a
    binary (Telco, attrition), a regression (Wage) and a multiclass (hpc_data) table."""
    p = profile(tables[name], target=ALL_TARGETS[name], name=name)
    params = GOLDEN / "params.yaml"
    drafts = draft(params.read_text(), tables[name], p, params)
    assert drafts.params_text == (GOLDEN / f"{name}.params.yaml").read_text()
    suite = json.dumps(drafts.suite, indent=2, sort_keys=False) + "\n"
    assert suite == (GOLDEN / f"{name}.suite.json").read_text()
    assert (drafts.raw_data, drafts.data_pin) == (Path("data/raw"), Path("data.dvc"))


@pytest.mark.slow
def test_run_init_writes_the_golden_files_and_replaces_the_previous_table(repo, table_files):
    raw = repo / "data" / "raw"
    raw.mkdir(parents=True)
    shutil.copyfile(table_files["telco_churn"], raw / "telco_churn.csv")
    lines: list[str] = []
    done = run_init(repo, table_files["attrition"], target="Attrition", say=lines.append)
    assert done.params.read_text() == (GOLDEN / "attrition.params.yaml").read_text()
    assert done.suite.read_text() == (GOLDEN / "attrition.suite.json").read_text()
    assert sorted(p.name for p in raw.iterdir()) == ["attrition.csv"]
    assert f"removed {raw / 'telco_churn.csv'} (previous dataset's raw file)" in lines
    assert not any("likely leak" in line for line in lines)
    assert yaml.safe_load((repo / "data.dvc").read_text())["outs"][0]["md5"] == done.md5


@pytest.mark.slow
def test_cli_flags_a_leak_with_its_score_and_keep_keeps_it(repo, tables, tmp_path):
    table = tmp_path / "telco_copy.csv"
    with_churn_copy(tables["telco_churn"]).to_csv(table, index=False)
    args = ["init", str(table), "--target", "churn", "--params", str(repo / "params.yaml")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (
        "likely leak: churn_copy: ROC AUC 1.000 alone: left out; keep it with --keep churn_copy"
        in result.output
    )
    text = (repo / "params.yaml").read_text()
    dataset = yaml.safe_load(text)["dataset"]
    assert "churn_copy" not in dataset["numeric"] + dataset["categorical"]
    assert "churn_copy: likely leak: ROC AUC 1.000 on its own" in text  # in the review note

    result = CliRunner().invoke(app, [*args, "--keep", "churn_copy"])
    assert result.exit_code == 0, result.output
    assert "likely leak: churn_copy: ROC AUC 1.000 alone: kept (--keep)" in result.output
    dataset = yaml.safe_load((repo / "params.yaml").read_text())["dataset"]
    assert "churn_copy" in dataset["numeric"]

    result = CliRunner().invoke(app, [*args, "--keep", "churn_cpy"])
    assert result.exit_code != 0 and "--keep 'churn_cpy' is not a column" in result.output


def test_no_function_of_the_init_package_is_over_60_lines():
    long = []
    for path in init_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > 60:
                    long.append(f"{path.name}:{node.name} {size} lines")
    assert long == []


@pytest.mark.slow
def test_cli_chooses_the_task_prints_why_and_reinit_switches_it(repo, table_files):
    """Wage (regression: logwage flagged), then hpc_data (multiclass) in the same project,
    then attrition (binary) again: each params.yaml parses with its task's keys only."""
    from retrain.config import load_params

    params = repo / "params.yaml"

    def init(name: str, *extra: str) -> tuple[str, dict]:
        args = ["init", str(table_files[name]), "--target", ALL_TARGETS[name]]
        result = CliRunner().invoke(app, [*args, "--params", str(params), *extra])
        assert result.exit_code == 0, result.output
        return result.output, yaml.safe_load(params.read_text())

    out, raw = init("wage")
    assert "task: regression (numeric, 508 distinct values)" in out
    assert "likely leak: logwage: |Spearman| 1.000 alone: left out" in out
    assert raw["dataset"]["task"] == "regression" and "positive_class" not in raw["dataset"]
    assert raw["registry"]["gate"]["metric"] == "rmse"  # roc_auc does not score it
    assert load_params(params).dataset.task == "regression"

    out, raw = init("hpc_data")
    assert "task: multiclass (4 classes: F, L, M, VF)" in out
    assert raw["dataset"]["classes"] == ["F", "L", "M", "VF"]
    assert raw["registry"]["gate"]["metric"] == "log_loss"
    assert load_params(params).dataset.task == "multiclass"

    out, raw = init("attrition")
    assert "task: binary (positive class 'Yes'" in out
    assert raw["dataset"]["task"] == "binary" and "classes" not in raw["dataset"]
    assert raw["dataset"]["positive_class"] == "Yes"
    assert raw["registry"]["gate"]["metric"] == "log_loss"  # it scores binary too: kept

    result = CliRunner().invoke(
        app,
        ["init", str(table_files["wage"]), "--target", "wage", "--params", str(params),
         "--positive-class", "3"],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "--positive-class is for a binary target only; column 'wage'" in result.output
    result = CliRunner().invoke(
        app,
        ["init", str(table_files["hpc_data"]), "--target", "class", "--params", str(params),
         "--task", "regression"],
    )  # fmt: skip
    assert result.exit_code != 0 and "column 'class' (target) holds text" in result.output
    assert "a regression target must be numeric" in result.output
    assert yaml.safe_load(params.read_text())["dataset"]["task"] == "binary"  # nothing written
