from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from retrain.config import ModelParams
from retrain.orchestration.artifacts import (
    AS_RECORDED,
    HOLDOUT_OURS,
    HOLDOUT_PROD,
    drift_markdown,
    metrics_rows,
    record_markdown,
    run_card_markdown,
    validation_markdown,
)
from retrain.registry.gate import GateResult
from retrain.report import short_names

TABM_MINI = ModelParams(
    hidden_dim=128, n_layers=2, dropout=0.1, lr=0.002, weight_decay=0.0, batch_size=256, k=32
)


def test_metrics_rows_put_ours_baselines_and_production_side_by_side():
    metrics = {
        "tabm": {"roc_auc": 0.841234567, "ece": 0.0612},
        "threshold": 0.31234,
        "logreg": {"roc_auc": 0.83},
        "lightgbm": {"roc_auc": 0.85},
    }
    decision = GateResult(
        "rejected",
        False,
        ["ECE 0.0612 above the bound 0.05"],
        "roc_auc",
        0.002,
        390,
        challenger={"roc_auc": 0.83551, "ece": 0.0612},
        champion={"roc_auc": 0.82694, "ece": 0.041},
    )
    columns = short_names(TABM_MINI)
    rows = metrics_rows(columns, metrics, {"tabm": {"roc_auc": 0.837}}, decision)
    auc = next(r for r in rows if r["metric"] == "roc_auc")
    # The same-holdout numbers the gate compared, beside this run's test figures, and the
    # production model's own (older) test figure labelled as recorded.
    assert auc == {
        "metric": "roc_auc",
        "better": "higher",
        "ours (TabM-mini)": 0.8412,
        "logreg": 0.83,
        "LightGBM": 0.85,
        HOLDOUT_OURS: 0.8355,
        HOLDOUT_PROD: 0.8269,
        AS_RECORDED: 0.837,
    }
    ece = next(r for r in rows if r["metric"] == "ece")
    assert ece["better"] == "lower" and ece[HOLDOUT_OURS] == 0.0612
    assert next(r for r in rows if r["metric"] == "threshold")["ours (TabM-mini)"] == 0.3123
    f1 = next(r for r in metrics_rows(columns, metrics, None) if r["metric"] == "f1")
    assert f1[AS_RECORDED] is None


def test_the_model_columns_name_the_network_its_parameters_describe():
    """Named from the model section, not typed in: TabM-mini, TabM, a single MLP (k = 1)."""
    assert short_names(TABM_MINI)["tabm"] == "ours (TabM-mini)"
    assert short_names(TABM_MINI.model_copy(update={"arch": "tabm"}))["tabm"] == "ours (TabM)"
    assert short_names(TABM_MINI.model_copy(update={"k": 1}))["tabm"] == "ours (MLP)"


def test_versions_are_code_spans_not_mailto_links():
    record = {
        "run_id": "20260101T000000Z-abcd",
        "reason": "drift",
        "code_revision": "0123456789abcdef",
        "data": {"md5": "d41d8", "batches": []},
        "gate": {"metric": "roc_auc"},
        "metrics": {"roc_auc": 0.835512, "ece": 0.061234},
        "model": {"name": "churn-model", "version": "v2.0.0", "prod": "v1.0.0", "promoted": False},
    }
    text = record_markdown(record)
    assert "`churn-model@v2.0.0`" in text and "`churn-model@v1.0.0`" in text
    assert "0.8355" in text and "0.0612" in text and "0.835512" not in text
    # Every name@version in the text sits inside a code span (Markdown would mail-link it).
    bare = re.sub(r"`[^`]*`", "", text)
    assert not re.search(r"\w@v\d", bare)


def test_validation_markdown_lists_failures_with_columns():
    summary = {
        "success": False,
        "tables": [
            {
                "source": "data/raw/x.csv",
                "success": False,
                "headline": "data/raw/x.csv: column 'contract' failed ...",
                "failures": [
                    {
                        "severity": "critical",
                        "column": "contract",
                        "expectation": "expect_column_values_to_be_in_set",
                        "detail": "2 of 10 rows unexpected, e.g. ['Three year']",
                    }
                ],
            }
        ],
    }
    md = validation_markdown(summary)
    assert "FAILED" in md
    assert "| critical | contract | expect_column_values_to_be_in_set |" in md


def test_drift_markdown_states_the_verdict_and_every_column():
    column = {"column": "contract", "kind": "categorical", "method": "jensenshannon"}
    summary = {
        "batch": "b.csv",
        "gate": {"tripped": True, "reasons": ["3 of 19 feature columns drifted"]},
        "reference_rows": 4000,
        "current_rows": 500,
        "features": {"contract": {**column, "score": 0.31, "threshold": 0.1, "drifted": True}},
        "prediction": None,
        "target": None,
    }
    md = drift_markdown(summary)
    assert "`b.csv`: gate TRIPPED" in md and "- 3 of 19 feature columns drifted" in md
    assert "| contract | categorical | jensenshannon | 0.31 | 0.1 | yes |" in md


def _record(**model: Any) -> dict[str, Any]:
    return {
        "run_id": "20261206T101500Z-ab12",
        "reason": "drift",
        "overrides": {"tune.n_trials": 4},
        "gate": {
            "metric": "roc_auc",
            "decision": "rejected",
            "reasons": ["roc_auc gain -0.0040 < margin 0.0020"],
        },
        "model": {"name": "churn-model", "version": "v3.0.0", "prod": "v2.0.0"}
        | {"registered": True, "promoted": False}
        | model,
    }


def test_the_run_card_names_the_registry_version_the_gate_and_the_rebuild_command():
    # Issue 28: the card (written before the gate) named no version and no decision, and
    # gave a rebuild command that drops the run's overrides.
    card = "# Model card\n\n## Reproduce\n\n`git checkout abc && dvc pull && dvc repro`\n"
    md = run_card_markdown(card, _record())
    assert md.startswith(card)
    added = md.removeprefix(card)
    assert "## This run: `run/20261206T101500Z-ab12` (drift)" in added
    assert "registry version: `churn-model@v3.0.0`; in production: `churn-model@v2.0.0`" in added
    assert "gate decision: rejected (not promoted)" in added
    assert "roc_auc gain -0.0040 < margin 0.0020" in added
    assert "Rebuild: `retrain reproduce 20261206T101500Z-ab12`" in added
    assert "tune.n_trials" in added
    # A run that registered nothing says so, not the champion's version as its own.
    unregistered = run_card_markdown(card, _record(registered=False, version="v2.0.0"))
    assert "registry version: not registered" in unregistered


def _regression_gate() -> GateResult:
    # RMSE 10.2 against production's 10.9: ours is 0.7 better (gain counts lower as better).
    return GateResult(
        "promoted",
        True,
        [],
        "rmse",
        0.05,
        600,
        challenger={"rmse": 10.2, "mae": 7.1, "r2": 0.31, "coverage": 0.89667},
        champion={"rmse": 10.9, "mae": 7.4, "r2": 0.27, "coverage": 0.9},
        gain=0.7,
        interval=[0.3, 1.1],
        confidence=0.95,
        rules={"tolerance": 0.0, "coverage_tolerance": 0.02},
        task="regression",
        interval_coverage={"level": 0.9, "half_width": 12.5, "tolerance": 0.02},
    )


def test_regression_metrics_rows_are_its_metrics_with_their_directions():
    from retrain.task import RegressionTask

    metrics = {"tabm": {"rmse": 10.21234, "mae": 7.1, "r2": 0.31}, "lightgbm": {"rmse": 10.5}}
    rows = metrics_rows(
        short_names(TABM_MINI), metrics, None, _regression_gate(), RegressionTask()
    )
    # No AUC, ECE nor threshold; the interval's coverage on the gate's holdout instead.
    assert [r["metric"] for r in rows] == ["rmse", "mae", "r2", "coverage"]
    by = {r["metric"]: r for r in rows}
    assert by["coverage"]["better"] == "near its level"
    assert by["coverage"][HOLDOUT_OURS] == 0.8967 and by["coverage"]["ours (TabM-mini)"] is None
    assert by["rmse"]["better"] == "lower" and by["r2"]["better"] == "higher"
    assert by["rmse"]["ours (TabM-mini)"] == 10.2123 and by["rmse"][HOLDOUT_PROD] == 10.9
    # The rules are in the gate artifact (the metrics table fits 1400 px without them).
    from retrain.registry.gate import markdown

    md = markdown(_regression_gate(), "v1", "ours", 0.05)
    assert "| coverage | closer to level |" in md and "ours within 0.02 of 0.9" in md
    assert "| rmse | lower |" in md and "ours >= prod + " in md


def test_multiclass_metrics_rows_keep_ece_but_no_threshold():
    from retrain.task import MulticlassTask

    task = MulticlassTask(["F", "L", "M", "VF"])
    rows = metrics_rows(short_names(TABM_MINI), {"tabm": {"log_loss": 0.5}}, None, task=task)
    assert [r["metric"] for r in rows] == [*task.metrics, "ece"]
    assert {r["metric"]: r["better"] for r in rows}["log_loss"] == "lower"
    assert {r["metric"]: r["better"] for r in rows}["roc_auc_ovr"] == "higher"


def test_a_regression_record_says_lower_is_better_and_which_way_the_gain_runs():
    record = {
        "run_id": "20261206T101500Z-ab12",
        "reason": "drift",
        "code_revision": "0123456789abcdef",
        "data": {"md5": "d41d8", "batches": []},
        "gate": _regression_gate().to_dict(),
        "metrics": {"rmse": 10.21234, "mae": 7.1, "r2": 0.31},
        "model": {"name": "wage-model", "version": "v2.0.0", "prod": "v2.0.0", "promoted": True},
    }
    text = record_markdown(record)
    assert "- rmse (lower is better): 10.2123" in text
    assert "ECE" not in text  # a regression model has none
    assert "rmse production - ours +0.7000, 95% CI [+0.3000, +1.1000]" in text


def test_multiclass_predictions_artifact_counts_rows_per_predicted_class():
    import pandas as pd

    from retrain.orchestration.artifacts import predictions_markdown
    from retrain.task import MulticlassTask

    # The predict output's columns for a multiclass model (retrain.scoring).
    scored = pd.DataFrame(
        {
            "predicted_class": ["F", "F", "VF", "M"],
            "probability_F": [0.7, 0.6, 0.1, 0.2],
            "probability_L": [0.1, 0.2, 0.1, 0.1],
            "probability_M": [0.1, 0.1, 0.2, 0.5],
            "probability_VF": [0.1, 0.1, 0.6, 0.2],
        }
    )
    md = predictions_markdown(
        scored, Path("p.parquet"), "`m@v1`", task=MulticlassTask(list("FLM") + ["VF"])
    )
    assert "| F | 2 | 50.00% | 0.4000 |" in md
    assert "| L | 0 | 0.00% | 0.1250 |" in md  # a class never predicted is still listed
    assert "| VF | 1 | 25.00% | 0.2500 |" in md
    assert "predicted positive" not in md and "score quantiles" not in md


def test_regression_predictions_artifact_shows_values_and_their_interval():
    import pandas as pd

    from retrain.orchestration.artifacts import predictions_markdown
    from retrain.task import RegressionTask

    values = [80.0, 100.0, 120.0, 140.0]
    scored = pd.DataFrame(
        {
            "prediction": values,
            "interval_lower": [v - 25.5 for v in values],
            "interval_upper": [v + 25.5 for v in values],
            "interval_level": 0.9,
        }
    )
    md = predictions_markdown(scored, Path("p.parquet"), "`m@v1`", task=RegressionTask())
    assert "- predicted value quantiles (min, 10%, 25%, median, 75%, 90%, max): 80.0000, " in md
    assert "- interval: value ± 25.5000 (90% prediction interval)" in md
    assert "| 80.00-86.00 | 1 |" in md and "| 134.00-140.00 | 1 |" in md
    assert "predicted positive" not in md and "score quantiles" not in md
