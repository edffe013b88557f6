"""The history and the run comparison of a regression or multiclass project (issue 26): the
gate's metric with the way it reads ("lower is better" for RMSE), and no binary-only pieces
(ROC/PR charts, per-class tables squeezed into a cell)."""

from __future__ import annotations

import re

from retrain.history.compare import Side, metric_rows, render, text
from retrain.history.page import runs_section
from retrain.history.table import HistoryRow, markdown_table, text_table


def _row(run: str, model: str, ours: float, champion: float | None) -> HistoryRow:
    return HistoryRow(
        run_id=run,
        tag=f"run/{run}",
        finished_at="2026-12-06 10:00:00",
        reason="drift",
        trigger="",
        trigger_url=None,
        data="abcd1234 +1 batches",
        model=model,
        promoted=True,
        metric="rmse",
        ours=ours,
        logreg=None,
        lightgbm=ours + 0.5,
        holdout_ours=ours,
        holdout_champion=champion,
        champion=None,
        decision="promoted",
        why="",
    )


ROWS = [
    _row("20261206T100000Z-aaaa", "v1.0.0", 34.2, None),
    _row("20261206T110000Z-bbbb", "v2.0.0", 33.1, 34.0),
]


def test_a_regression_history_says_rmse_is_lower_is_better():
    assert text_table(ROWS).splitlines()[0].startswith("metric: rmse, lower is better (")
    assert markdown_table(ROWS).startswith("## Model history (rmse, lower is better)")
    section = runs_section(ROWS)
    assert "<h2>rmse over time (lower is better)</h2>" in section
    assert 'aria-label="rmse, lower is better"' in section
    assert len(re.findall(r'<circle class="point" data-series="ours \(test\)"', section)) == 2


def test_a_binary_history_says_higher_is_better():
    auc = [r.__class__(**{**r.__dict__, "metric": "roc_auc"}) for r in ROWS]
    assert "<h2>roc_auc over time (higher is better)</h2>" in runs_section(auc)


def _side(run: str, evaluate: dict) -> Side:
    record = {
        "run_id": run,
        "reason": "manual",
        "model": {"version": "v1.0.0"},
        "gate": {"decision": "first", "reasons": []},
    }
    return Side(run, record, evaluate, {}, roc=[], pr=[], slices={})


def test_comparing_multiclass_runs_shows_numbers_only_and_no_roc_chart():
    per_class = {"F": {"precision": 0.8, "recall": 0.9}}
    a = _side("A1", {"tabm": {"log_loss": 0.61, "per_class": per_class, "confusion": [[1, 2]]}})
    b = _side("B1", {"tabm": {"log_loss": 0.58, "per_class": per_class, "confusion": [[2, 1]]}})
    rows = metric_rows(a, b)
    assert ("ours log_loss", "0.6100", "0.5800") in rows
    assert not any("per_class" in name or "confusion" in name for name, _, _ in rows)
    assert text(a, b, "log_loss").startswith("metrics (the gate's: log_loss, lower is better)")
    page = render(a, b, "log_loss")
    assert "The gate's metric: log_loss, lower is better." in page
    assert "ROC" not in page and "Plots (test split)" not in page
    assert "<h2>Slices (log_loss)</h2>" in page


def test_the_drift_table_follows_the_prediction_and_the_target_over_batches(tmp_path):
    import json

    from retrain.history.page import drift_points, drift_section

    def column(name: str, kind: str, score: float, drifted: bool) -> dict:
        return {"column": name, "kind": kind, "score": score, "drifted": drifted}

    summary = {
        "batch": "b1.csv",
        "share_drifted": 0.0,
        "features": {"age": column("age", "numeric", 0.02, False)},
        "prediction": column("predicted value", "prediction", 0.31, True),
        "target": column("wage", "target", 0.27, True),
    }
    (tmp_path / "b1").mkdir()
    (tmp_path / "b1" / "drift.json").write_text(json.dumps(summary))
    (point,) = drift_points(tmp_path)
    assert point.columns == {"age": (0.02, False)}  # the share counts features only
    assert point.signals == {
        "prediction: predicted value": (0.31, True),
        "target: wage": (0.27, True),
    }
    section = drift_section([point])
    rows = re.findall(r'<tr class="drift" data-column="([^"]+)">', section)
    assert rows == ["age", "prediction: predicted value", "target: wage"]
    assert "0.3100 drifted" in section and "0.2700 drifted" in section
