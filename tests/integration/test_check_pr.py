"""`retrain check-pr` end to end: a base commit (data pinned, pipeline run, dvc.lock and metrics
committed, data in the DVC cache) and head commits that change nothing, break columns, shift
a distribution, change a param, or all of it at once (the README's example)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from retrain.prcheck.render import readme_block
from tests.conftest import REPO, copy_repo, pipeline_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RAW = Path("data/raw/telco_churn.csv")
BY_HAND = Path("data/raw/batches/by-hand.csv")
EXAMPLE = REPO / "docs" / "pr-report-example.md"
README = REPO / "README.md"


def git(repo: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(cmd, cwd=repo, check=True, capture_output=True, text=True).stdout


def dvc(repo: Path, *args: str) -> None:
    cmd = [sys.executable, "-m", "dvc", *args]
    proc = subprocess.run(cmd, cwd=repo, env=pipeline_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def base_repo(trained_repo: Path, tmp_path_factory) -> Path:
    """main: the small pipeline run and committed (dvc.lock, metrics); data in the DVC cache."""
    root = tmp_path_factory.mktemp("check_pr")
    repo = copy_repo(trained_repo, root / "base")
    # A remote of its own, empty: a copy shares its source's remote, which another test of
    # the session may have pushed to (then the base's data would be "on the remote").
    from retrain.infra import dvc

    (root / "remote").mkdir()
    dvc.set_remote_url(repo, "local", str(root / "remote"))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base: pipeline run")
    return repo


def head(base_repo: Path, tmp_path: Path, change: Callable[[Path], None]) -> Path:
    """A copy of the base on branch `pr` with one commit made by `change`."""
    repo = copy_repo(base_repo, tmp_path / "head")
    git(repo, "checkout", "-qb", "pr")
    change(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "pull request")
    return repo


def edit_data(repo: Path, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    """Change the raw table and pin it, as a pull request that changes data does."""
    path = repo / RAW
    edit(pd.read_csv(path)).to_csv(path, index=False, lineterminator="\n")
    dvc(repo, "commit", "-f", "-q", "data.dvc")


def set_param(repo: Path, section: str, key: str, value: object) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params[section][key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def check_pr(repo: Path, *args: str) -> tuple[int, str, dict]:
    cmd = [sys.executable, "-m", "retrain.cli", "check-pr", "--base", "main", *args]
    proc = subprocess.run(cmd, cwd=repo, env=pipeline_env(), capture_output=True, text=True)
    markdown = (repo / "reports/pr/report.md").read_text()
    assert proc.stdout == markdown, proc.stderr
    return proc.returncode, markdown, json.loads((repo / "reports/pr/report.json").read_text())


def failures(report: dict) -> dict[tuple[str, str], dict]:
    return {
        (f["column"], f["expectation"]): f
        for table in report["validation"]
        for f in table["failures"]
    }


def changed_metrics(report: dict) -> set[str]:
    diff = report["pipeline"]["metrics_diff"]
    return {k for k, v in diff.items() if v.get("old") != v.get("new")}


def shift_charges(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(monthly_charges=(df["monthly_charges"] * 1.3).round(2))


def test_a_nothing_changed_in_the_data(base_repo, tmp_path):
    repo = head(base_repo, tmp_path, lambda r: (r / "README.md").write_text("# changed\n"))
    code, markdown, report = check_pr(repo)
    assert code == 0, markdown
    assert report["status"] == "passed"
    assert markdown.splitlines()[1] == (
        "## ✅ Passed: no change to data, suites, params or metrics"
    )
    assert report["data"]["identical"] and report["drift"] is None
    assert "unchanged (same DVC hash" in report["drift_note"]
    assert report["suite_changes"] == [] and report["pipeline"]["params_diff"] == {}
    assert report["pipeline"]["changed"] == {} and not report["pipeline"]["reran"]
    assert report["pipeline"]["metrics_diff"] and changed_metrics(report) == set()
    assert [t["failures"] for t in report["validation"]] == [[]]
    assert report["warnings"] == report["blocking"] == report["errors"] == []


def test_b_broken_columns_block_and_are_named_with_counts_and_examples(base_repo, tmp_path):
    def brk(df: pd.DataFrame) -> pd.DataFrame:
        df = df.astype({"monthly_charges": object})
        df.loc[[5, 17, 40], "churn"] = None  # nulls in the target
        df.loc[[3, 9], "payment_method"] = "Digital wallet"  # a new category
        df.loc[7, "monthly_charges"] = "29,85 EUR"  # a wrong type
        return df

    def change(repo: Path) -> None:
        # Beside the broken columns, a batch committed by hand (never through ingest) whose
        # rows the base already holds: the suite passes it, the data contract does not.
        again = pd.read_csv(repo / RAW).iloc[20:40]
        edit_data(repo, brk)
        (repo / BY_HAND).parent.mkdir(parents=True)
        again.to_csv(repo / BY_HAND, index=False, lineterminator="\n")
        dvc(repo, "commit", "-f", "-q", "data.dvc")

    repo = head(base_repo, tmp_path, change)
    code, markdown, report = check_pr(repo)
    assert code == 1, markdown
    assert report["status"] == "blocked"
    # The line ingest gives for that batch, in the blocking list, the verdict and section 1.
    collision = (
        f"{BY_HAND}: column 'customer_id': 20 id(s) already in the pinned data "
        "(21, 22, 23, 24, 25 ... 20 in all): a batch brings new rows; an update of pinned "
        "rows is refused"
    )
    assert report["contract"] == [collision]
    assert collision in report["blocking"] and f"- ❌ {collision}" in markdown
    assert collision in markdown.splitlines()[1]
    found = failures(report)
    blocking = {col for (col, _), f in found.items() if f["severity"] == "critical"}
    assert blocking == {"churn", "payment_method", "monthly_charges"}
    null = found[("churn", "expect_column_values_to_not_be_null")]
    assert (null["unexpected_count"], null["rows"]) == (3, [5, 17, 40])
    new = found[("payment_method", "expect_column_values_to_be_in_set")]
    assert (new["unexpected_count"], new["examples"]) == (2, ["Digital wallet"] * 2)
    typed = found[("monthly_charges", "expect_column_values_to_be_in_type_list")]
    assert (typed["unexpected_count"], typed["examples"], typed["rows"]) == (1, ["29,85 EUR"], [7])
    verdict = markdown.splitlines()[1]
    assert verdict.startswith("## ❌ Blocked: ")
    for column in ("`churn`", "`payment_method`", "`monthly_charges`"):
        assert column in verdict
    assert "| 3 of 7,043 | rows 5, 17, 40 |" in markdown
    assert '| 2 of 7,043 | "Digital wallet" ×2 (rows 3, 9) |' in markdown
    assert '| 1 of 7,043 | "29,85 EUR" (row 7) |' in markdown
    # The pipeline would stop at validate: it is not run, and nothing else is blamed.
    assert report["pipeline"]["skipped_because"] == "a blocking check failed"
    assert report["pipeline"]["params_diff"] == {} and changed_metrics(report) == set()
    assert report["drift"]["shift"]["payment_method"] == "'Digital wallet' new: 2 rows (0.03%)"


def test_c_shifted_distribution_is_drift_of_exactly_that_column(base_repo, tmp_path):
    repo = head(base_repo, tmp_path, lambda r: edit_data(r, shift_charges))
    code, markdown, report = check_pr(repo, "--no-repro")
    assert code == 0, markdown  # drift warns; it does not block
    assert report["status"] == "passed with warnings"
    drift = report["drift"]
    assert drift["drifted_features"] == ["monthly_charges"]
    assert drift["shift"]["monthly_charges"] == "mean 64.76 → 84.19"
    assert drift["target"]["drifted"] is False and not drift["gate"]["tripped"]
    # The base's data came from DVC at the base commit, not from the head's workspace.
    data = report["data"]
    assert data["base_source"] == "DVC cache" and data["base_pin"] != data["head_pin"]
    assert [(f["path"], f["status"]) for f in data["files"]] == [("telco_churn.csv", "modified")]
    assert [t["failures"] for t in report["validation"]] == [[]]
    assert report["suite_changes"] == [] and report["pipeline"]["params_diff"] == {}
    assert report["pipeline"]["skipped_because"] == "--no-repro"
    assert markdown.splitlines()[1] == (
        "## ⚠️ Passed with warnings: data: 1 file(s) changed; drift: monthly_charges"
    )
    assert "| `monthly_charges` | numeric | mean 64.76 → 84.19 |" in markdown

    # Without the base's data in the cache or on the remote, drift cannot be measured.
    from retrain.prcheck.data import BaseDataUnavailable, fetch_base_data

    cache = repo / ".dvc" / "cache" / "files" / "md5"
    pin = data["base_pin"]
    manifest = cache / pin[:2] / pin[2:]
    for entry in json.loads(manifest.read_text()):
        (cache / entry["md5"][:2] / entry["md5"][2:]).unlink()
    manifest.unlink()
    base = git(repo, "rev-parse", "main").strip()
    with pytest.raises(BaseDataUnavailable, match="neither in the DVC cache nor on the remote"):
        fetch_base_data(repo, base, "data/raw", tmp_path / "base-data", pin)


def test_d_param_change_reruns_the_pipeline_and_diffs_params_and_metrics(base_repo, tmp_path):
    repo = head(base_repo, tmp_path, lambda r: set_param(r, "train", "max_epochs", 2))
    code, markdown, report = check_pr(repo)
    assert code == 0, markdown
    pipe = report["pipeline"]
    assert pipe["params_diff"] == {"train.max_epochs": {"old": 8, "new": 2, "diff": -6}}
    assert pipe["changed"] == {"train": ["params.yaml: train modified"]}
    assert pipe["reran"] and pipe["stages_run"] == ["train", "evaluate", "drift", "report"]
    changed = changed_metrics(report)
    assert "metrics/evaluate.json:tabm.roc_auc" in changed
    # Only our model retrained: the baselines and the data split are the same.
    assert not {m for m in changed if ".logreg." in m or ".lightgbm." in m or "prepare" in m}
    assert report["data"]["identical"] and report["drift"] is None
    assert report["suite_changes"] == [] and report["status"] == "passed"
    assert markdown.splitlines()[1].startswith(
        "## ✅ Passed: params: train.max_epochs; tabm roc_auc"
    )
    assert "| `train.max_epochs` | 8 | 2 |" in markdown
    assert "`dvc repro` ran train, evaluate, drift, report." in markdown
    # The README's example (written by test_e) has the sections the tool writes today.
    assert _sections(EXAMPLE.read_text()) == _sections(markdown), "RETRAIN_UPDATE_DOCS=1"


def _sections(markdown: str) -> list[str]:
    return [ln for ln in markdown.splitlines() if ln.startswith("### ")]


def test_f_personal_data_blocks_even_when_the_suite_and_params_accept_it(base_repo, tmp_path):
    """A pull request that adds an e-mail column, declares it a feature and widens the suite's
    column set: only the PII guard stops it, and check-pr runs the same guard as the stage."""

    def change(repo: Path) -> None:
        edit_data(repo, lambda df: df.assign(email=[f"c{i}@example.com" for i in range(len(df))]))
        suite_path = repo / "expectations" / "telco_churn.json"
        suite = json.loads(suite_path.read_text())
        for e in suite["expectations"]:
            if e["type"] == "expect_table_columns_to_match_set":
                e["kwargs"]["column_set"].append("email")
        suite_path.write_text(json.dumps(suite, indent=2) + "\n")
        params = yaml.safe_load((repo / "params.yaml").read_text())
        params["dataset"]["categorical"].append("email")
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    repo = head(base_repo, tmp_path, change)
    code, markdown, report = check_pr(repo)
    assert code == 1, markdown
    assert report["status"] == "blocked"
    assert [t["failures"] for t in report["validation"]] == [[]]  # the suite alone passes
    (pii,) = [b for b in report["blocking"] if "personal data" in b]
    assert pii.startswith("data/raw/telco_churn.csv: column 'email' looks like personal data")
    assert "@example.com" not in markdown
    assert not report["pipeline"]["reran"]  # blocked before any dvc repro


def test_e_readme_example_shift_suite_and_param(base_repo, tmp_path):
    """The README's example, produced by the tool: prices rose 30%, the suite's bound on the
    mean monthly charge is widened to match, and training is shortened.

    It runs the whole pipeline again (~1-2 min), so only on request: RETRAIN_UPDATE_DOCS=1
    rewrites docs/pr-report-example.md and the README block from it. By default test_d checks
    the example's sections and tests/unit/prcheck/test_prcheck.py its content and the README
    block."""
    if os.environ.get("RETRAIN_UPDATE_DOCS") != "1":
        pytest.skip("regenerates the README's example: set RETRAIN_UPDATE_DOCS=1")

    def change(repo: Path) -> None:
        edit_data(repo, shift_charges)
        suite_path = repo / "expectations" / "telco_churn.json"
        suite = json.loads(suite_path.read_text())
        for e in suite["expectations"]:
            if e["type"] == "expect_column_mean_to_be_between":
                if e["kwargs"]["column"] == "monthly_charges":
                    e["kwargs"]["max_value"] = 110
        suite_path.write_text(json.dumps(suite, indent=2) + "\n")
        set_param(repo, "train", "max_epochs", 2)

    repo = head(base_repo, tmp_path, change)
    code, markdown, report = check_pr(repo)
    assert code == 0, markdown
    assert report["drift"]["drifted_features"] == ["monthly_charges"]
    (suite_change,) = report["suite_changes"]
    assert suite_change["column"] == "monthly_charges"
    assert suite_change["details"] == ["max_value: 90 → 110"]
    assert list(report["pipeline"]["params_diff"]) == ["train.max_epochs"]
    assert report["pipeline"]["stages_run"] == [
        "validate",
        "prepare",
        "tune",
        "train",
        "evaluate",
        "drift",
        "report",
    ]
    verdict = markdown.splitlines()[1]
    assert verdict.startswith(
        "## ⚠️ Passed with warnings: data: 1 file(s) changed; drift: monthly_charges; "
        "suites: 1 expectation(s) changed; params: train.max_epochs; tabm roc_auc "
    )
    EXAMPLE.parent.mkdir(exist_ok=True)
    EXAMPLE.write_text(markdown)
    README.write_text(readme_block(README.read_text(), markdown))
