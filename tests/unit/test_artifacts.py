from __future__ import annotations

from retrain.orchestration.artifacts import drift_markdown, metrics_rows, validation_markdown


def test_metrics_rows_put_ours_baselines_and_production_side_by_side():
    metrics = {
        "mlp": {"roc_auc": 0.84},
        "logreg": {"roc_auc": 0.83},
        "lightgbm": {"roc_auc": 0.85},
    }
    rows = metrics_rows(metrics, {"mlp": {"roc_auc": 0.82}})
    auc = next(r for r in rows if r["metric"] == "roc_auc")
    assert auc == {
        "metric": "roc_auc",
        "ours (MLP)": 0.84,
        "logistic regression": 0.83,
        "LightGBM": 0.85,
        "production": 0.82,
    }
    assert (
        next(r for r in metrics_rows(metrics, None) if r["metric"] == "f1")["production"] is None
    )


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
