"""The pull-request check's pure parts: suite diff, `dvc status` reading, column shifts, the
verdict and exit code, and the Markdown it renders."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from retrain.prcheck.check import PrCheck
from retrain.prcheck.data import describe_shift, for_drift
from retrain.prcheck.pipeline import PipelineResult, changed_inputs
from retrain.prcheck.render import MARKER, readme_block, render_markdown, verdict_line
from retrain.prcheck.suites import diff_suite
from retrain.validation.suite import Failure, ValidationResult
from tests.conftest import REPO, telco_csv, telco_schema

SUITE = {
    "name": "s",
    "expectations": [
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "pay", "value_set": ["a", "b"]},
            "severity": "critical",
            "meta": {"why": "known levels"},
        },
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "total", "row_condition": "tenure > 0"},
            "severity": "critical",
        },
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "total", "mostly": 0.99},
            "severity": "critical",
        },
        {
            "type": "expect_column_mean_to_be_between",
            "kwargs": {"column": "charges", "min_value": 40, "max_value": 90},
            "severity": "warning",
        },
    ],
}


def test_suite_diff_names_each_change_by_expectation_and_column():
    head = copy.deepcopy(SUITE)
    exps = head["expectations"]
    exps[0]["kwargs"]["value_set"].append("wallet")
    exps[2]["kwargs"]["mostly"] = 0.95  # the unconditioned one of two on the same column
    exps[3]["severity"] = "critical"
    exps[3]["kwargs"]["max_value"] = 110
    exps.append({"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}})
    del exps[1]
    changes = {
        (c.change, c.expectation, c.column, c.condition): c
        for c in diff_suite("s.json", SUITE, head)
    }
    assert set(changes) == {
        ("changed", "expect_column_values_to_be_in_set", "pay", None),
        ("removed", "expect_column_values_to_not_be_null", "total", "tenure > 0"),
        ("changed", "expect_column_values_to_not_be_null", "total", None),
        ("changed", "expect_column_mean_to_be_between", "charges", None),
        ("added", "expect_column_values_to_be_unique", "id", None),
    }
    details = {k[1:3]: c.details for k, c in changes.items() if k[0] == "changed"}
    assert details[("expect_column_values_to_be_in_set", "pay")] == ['value_set: added ["wallet"]']
    assert details[("expect_column_values_to_not_be_null", "total")] == ["mostly: 0.99 → 0.95"]
    assert details[("expect_column_mean_to_be_between", "charges")] == [
        "max_value: 90 → 110",
        'severity: "warning" → "critical"',
    ]


def test_suite_diff_of_equal_suites_and_of_a_new_file():
    assert diff_suite("s.json", SUITE, copy.deepcopy(SUITE)) == []
    added = diff_suite("s.json", None, SUITE)
    assert [c.change for c in added] == ["added"] * 4


def test_changed_inputs_reads_params_and_data_but_not_missing_outputs():
    status = {
        "data.dvc": [{"changed outs": {"data/raw": "modified"}}],
        "train": [{"changed deps": {"params.yaml": {"train": "modified"}}}],
        # A checkout without the pipeline's outputs: not a change of the pull request.
        "evaluate": [
            {"changed deps": {"models/model/model.onnx": "deleted"}},
            {"changed outs": {"metrics/evaluate.json": "deleted"}},
        ],
        "validate": [{"changed deps": {"expectations/x.json": "modified"}}],
    }
    assert changed_inputs(status) == {
        "data.dvc": ["data/raw modified"],
        "train": ["params.yaml: train modified"],
        "validate": ["expectations/x.json modified"],
    }
    assert changed_inputs({}) == {}


def test_describe_shift():
    assert describe_shift(pd.Series([1.0, 3.0]), pd.Series([2.0, 6.0]), numeric=True) == (
        "mean 2 → 4"
    )
    base = pd.Series(["a"] * 8 + ["b"] * 2)
    assert describe_shift(base, pd.Series(["a"] * 5 + ["b"] * 5), numeric=False) == (
        "'a' 80.0% → 50.0%"
    )
    head = pd.Series(["a"] * 8 + ["wallet"] * 2)
    assert describe_shift(base, head, numeric=False) == "'wallet' new: 2 rows (20.00%)"


def test_for_drift_turns_text_in_numbers_into_missing():
    schema = telco_schema()
    raw = pd.read_csv(telco_csv(), nrows=5)
    raw["tenure"] = raw["tenure"].astype(object)
    raw.loc[1, "tenure"] = "twelve"
    out = for_drift(raw, schema)
    assert out["tenure"].dtype == "float64" and out["tenure"].isna().sum() == 1
    assert list(out.columns) == schema.columns


def _result(*failures: Failure) -> ValidationResult:
    return ValidationResult(
        source="data/raw/t.csv",
        suite="s",
        success=not any(f.blocking for f in failures),
        n_rows=100,
        evaluated=10,
        failures=list(failures),
    )


NULL_TARGET = Failure(
    "expect_column_values_to_not_be_null",
    "churn",
    "critical",
    "labels",
    "3 rows",
    3,
    ["nan", "nan"],
    [5, 17],
)
MEAN = Failure(
    "expect_column_mean_to_be_between", "charges", "warning", "mean", "observed 95", None
)


@pytest.mark.parametrize(
    ("check", "status", "code", "icon"),
    [
        (PrCheck("main", "a" * 40, "h"), "passed", 0, "✅"),
        (PrCheck("main", "a" * 40, "h", warnings=["drifted: x"]), "passed with warnings", 0, "⚠️"),
        (PrCheck("main", "a" * 40, "h", errors=["base data: gone"]), "incomplete", 2, "⛔"),
        (PrCheck("main", "a" * 40, "h", blocking=["b"], errors=["e"]), "blocked", 1, "❌"),
    ],
)
def test_status_exit_code_and_verdict_line(check, status, code, icon):
    assert (check.status, check.exit_code) == (status, code)
    markdown = render_markdown(check)
    first, second = markdown.splitlines()[:2]
    assert first == MARKER  # hidden: what the sticky comment is found by
    assert second == verdict_line(check)
    assert second.startswith(f"## {icon} {status[0].upper()}{status[1:]}")


def test_blocked_verdict_names_the_columns_and_the_table_their_examples():
    check = PrCheck(
        "main",
        "a" * 40,
        "h",
        validation=[_result(NULL_TARGET, MEAN)],
        blocking=["data/raw/t.csv: 1 critical expectation(s) failed: churn (...)"],
        warnings=["data/raw/t.csv: 1 non-blocking expectation(s) failed: charges (...)"],
    )
    markdown = render_markdown(check)
    assert verdict_line(check) == (
        "## ❌ Blocked: 1 critical expectation(s) failed on the head's data: `churn` (not_be_null)"
    )
    assert (
        "| ❌ critical | `churn` | `expect_column_values_to_not_be_null` | 3 of 100 | rows 5, 17 |"
        in markdown
    )
    assert (
        "| ⚠️ warning | `charges` | `expect_column_mean_to_be_between` |  | observed 95 |"
        in markdown
    )
    for heading in (
        "### 1. Data validation",
        "### 2. Changes to the expectation suites",
        "### 3. Drift",
        "### 4. Params and metrics",
    ):
        assert heading in markdown


def test_passed_verdict_lists_what_changed():
    pipe = PipelineResult(
        params_diff={"train.max_epochs": {"old": 8, "new": 2}},
        metrics_diff={"metrics/evaluate.json:tabm.roc_auc": {"old": 0.8391, "new": 0.8394}},
        changed={"train": ["params.yaml: train modified"]},
        reran=True,
        stages_run=["train", "evaluate"],
    )
    check = PrCheck("main", "a" * 40, "h", metrics_file="metrics/evaluate.json", pipeline=pipe)
    assert verdict_line(check) == (
        "## ✅ Passed: params: train.max_epochs; tabm roc_auc 0.8391 → 0.8394 (+0.0003)"
    )
    markdown = render_markdown(check)
    assert "| `train.max_epochs` | 8 | 2 |" in markdown
    assert "`dvc repro` ran train, evaluate." in markdown


def test_passed_verdict_names_the_label_when_changed_data_did_not_drift():
    """Changed data that drifted nowhere: the verdict says what was compared, the label by
    the configured name (without this it said only "data: 1 file(s) changed")."""
    from retrain.prcheck.data import DataComparison, FileChange

    def check(label_drifted: bool) -> PrCheck:
        data = DataComparison("data/raw", "a", "b", "b", "DVC cache")
        data.files = [FileChange("batch-0001.csv", "added", None, 200)]
        features = {c: {"column": c, "drifted": False} for c in ("MonthlyIncome", "JobRole")}
        target = {"column": "Attrition", "drifted": label_drifted}
        drift = {"features": features, "drifted_features": [], "target": target}
        return PrCheck("main", "a" * 40, "h", data=data, drift=drift)

    assert verdict_line(check(False)) == (
        "## ✅ Passed: data: 1 file(s) changed; no drift in `Attrition` or 2 features"
    )
    assert verdict_line(check(True)) == (
        "## ✅ Passed: data: 1 file(s) changed; label drift: `Attrition` (no drift in 2 features)"
    )


def test_readme_shows_the_example_report_as_the_tool_wrote_it():
    example = (REPO / "docs" / "pr-report-example.md").read_text()
    readme = (REPO / "README.md").read_text()
    assert readme_block(readme, example) == readme, (
        "README's pr-report block differs from docs/pr-report-example.md: "
        "RETRAIN_UPDATE_DOCS=1 pytest tests/integration/test_check_pr.py -k readme"
    )
    first, verdict = example.splitlines()[:2]
    assert first == MARKER
    assert verdict.startswith("## ⚠️ Passed with warnings: data: 1 file(s) changed; ")
    for text in (
        "### 1. Data validation",
        "### 2. Changes to the expectation suites",
        "### 3. Drift",
        "### 4. Params and metrics",
        "| `monthly_charges` | numeric | mean 64.76 → 84.19 |",
        "max_value: 90 → 110",
        "| `train.max_epochs` | 8 | 2 |",
        "| tabm | ",
    ):
        assert text in example, text


def test_flags_read_as_integers_and_float_noise_is_not_a_change():
    base, head = pd.Series([0.0, 1.0, 1.0, 1.0]), pd.Series([0.0, 0.0, 1.0, 1.0])
    assert describe_shift(base, head, numeric=False) == "'0' 25.0% → 50.0%"
    pipe = PipelineResult(
        metrics_diff={
            "metrics/evaluate.json:logreg.roc_auc": {"old": 0.842712, "new": 0.842709},
            "metrics/evaluate.json:tabm.roc_auc": {"old": 0.8391, "new": 0.8394},
        }
    )
    markdown = render_markdown(PrCheck("main", "a" * 40, "h", pipeline=pipe))
    assert "1 metric(s) changed" in markdown and "logreg.roc_auc" not in markdown


def _task_check(task: str, gate_metric: str, metrics: dict[str, tuple[float, float]]) -> PrCheck:
    diff = {
        f"metrics/evaluate.json:{model}.{name}": {"old": old, "new": new}
        for model in ("tabm", "lightgbm")
        for name, (old, new) in metrics.items()
    }
    pipe = PipelineResult(metrics_diff=diff, reran=True, stages_run=["evaluate"])
    return PrCheck(
        "main",
        "a" * 40,
        "h",
        metrics_file="metrics/evaluate.json",
        task=task,
        gate_metric=gate_metric,
        pipeline=pipe,
    )


def test_a_regression_report_shows_its_metrics_their_directions_and_its_gate_metric():
    check = _task_check(
        "regression", "rmse", {"rmse": (34.5, 33.9), "mae": (24.0, 23.8), "r2": (0.3, 0.32)}
    )
    markdown = render_markdown(check)
    assert verdict_line(check) == "## ✅ Passed: tabm rmse 34.5000 → 33.9000 (−0.6000)"
    assert "| model | rmse | mae | r2 |" in markdown
    assert "| tabm | 34.5000 → **33.9000** (−0.6000) |" in markdown
    assert "Higher is better: r2; lower is better: rmse, mae." in markdown
    assert "roc_auc" not in markdown and "pr_auc" not in markdown


def test_a_multiclass_report_shows_its_metrics():
    metrics = {m: (0.5, 0.6) for m in ("log_loss", "roc_auc_ovr", "accuracy", "macro_f1", "brier")}
    markdown = render_markdown(_task_check("multiclass", "log_loss", metrics))
    assert "| model | log_loss | roc_auc_ovr | accuracy | macro_f1 | brier |" in markdown
    assert "lower is better: log_loss, brier" in markdown
    assert "tabm log_loss 0.5000 → 0.6000" in markdown.splitlines()[1]


def test_a_regression_targets_drift_is_not_called_label_drift():
    drift = {
        "features": {"age": {"column": "age", "drifted": False}},
        "drifted_features": [],
        "target": {"column": "wage", "drifted": True},
    }
    check = PrCheck("main", "a" * 40, "h", task="regression", gate_metric="rmse", drift=drift)
    assert verdict_line(check) == "## ✅ Passed: target drift: `wage` (no drift in 1 features)"


def test_a_regression_target_is_compared_as_numbers():
    from pathlib import Path

    from retrain.config import DatasetSchema
    from retrain.prcheck.data import for_drift

    schema = DatasetSchema(
        name="wage",
        suite=Path("s.json"),
        target="wage",
        task="regression",
        numeric=["age"],
        categorical=[],
    )
    frame = pd.DataFrame({"age": ["30", "41"], "wage": ["81.5", "oops"]})
    out = for_drift(frame, schema)
    assert out["wage"].dtype == "float64" and out["wage"].isna().tolist() == [False, True]
