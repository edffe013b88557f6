from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from retrain.config import load_params
from retrain.model_key import upgrade_metrics
from retrain.models.metrics import (
    best_f1_threshold,
    calibration_points,
    classification_metrics,
    expected_calibration_error,
    roc_points,
)
from retrain.report import (
    COLUMNS,
    END,
    MODEL_KEYS,
    SPLITS_END,
    SPLITS_START,
    START,
    model_names,
    replace_block,
    replace_splits_block,
    results_table,
    splits_table,
)
from tests.conftest import REPO, TELCO_KEYS


def test_metrics_on_a_known_case():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    m = classification_metrics(y, p, 0.5)
    assert m["roc_auc"] == 0.75
    assert m["accuracy"] == 0.75 and m["precision"] == 1.0 and m["recall"] == 0.5
    assert best_f1_threshold(y, p) == pytest.approx(0.35)


def test_calibration_counts_add_up_and_perfect_scores_have_zero_error():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=20000)
    y = (rng.uniform(size=20000) < p).astype(int)
    rows = calibration_points(y, p, 10)
    assert sum(r["count"] for r in rows) == 20000
    assert expected_calibration_error(y, p, 10) < 0.02
    assert expected_calibration_error(y, np.clip(p + 0.3, 0, 1), 10) > 0.2


def test_roc_points_run_from_zero_to_one():
    y = np.array([0, 1] * 50)
    tpr = roc_points(y, np.linspace(0, 1, 100))
    assert tpr[0] >= 0 and tpr[-1] == 1.0 and (np.diff(tpr) >= 0).all()


def _checkout_holds_telco() -> bool:
    """Whether the checkout is configured for, and pins, the shipped Telco table: only then are
    its metrics/ the README's results (after `retrain init` they are another table's)."""
    pin = yaml.safe_load((REPO / "data.dvc").read_text())["outs"][0]["md5"]
    shipped = yaml.safe_load(TELCO_KEYS.with_suffix(".dvc").read_text())["outs"][0]["md5"]
    name = yaml.safe_load((REPO / "params.yaml").read_text())["dataset"]["name"]
    return pin == shipped and name == "telco_churn"


def _readme_roc_aucs() -> dict[str, float]:
    """The README results block's ROC AUC per model key."""
    block = (REPO / "README.md").read_text().split(START)[1].split(END)[0]
    cells = {
        row.split("|")[1].strip(): row.split("|")[2:-1]
        for row in block.splitlines()
        if row[:2] == "| "
    }
    at = COLUMNS.index("roc_auc")
    names = model_names(load_params(REPO / "params.yaml").model)
    return {key: float(cells[label][at]) for key, label in names.items()}


def _checkout_metrics() -> dict:
    """The checkout's committed metrics/evaluate.json, read as every reader reads it (a file
    from before the model key's rename says `mlp`)."""
    return upgrade_metrics(json.loads((REPO / "metrics" / "evaluate.json").read_text()))[0]


def test_readme_results_are_the_pipelines_own():
    if not _checkout_holds_telco():
        pytest.skip("the checkout is configured for another table; README vs bench 7 below")
    model = load_params(REPO / "params.yaml").model
    readme = (REPO / "README.md").read_text()
    block = readme.split(START)[1].split(END)[0]
    assert block.strip() == results_table(_checkout_metrics(), model).strip()


def test_replace_block_requires_markers():
    assert replace_block(f"a\n{START}\nold\n{END}\nb", "new\n") == f"a\n{START}\nnew\n{END}\nb"
    with pytest.raises(ValueError):
        replace_block("no markers", "x")


def test_readme_splits_table_is_bench_7s_own():
    # The many-split table in the README is rendered from bench 7's raw numbers, which hold
    # the seed-42 Telco split that `dvc repro` reports: the two must agree.
    data = json.loads((REPO / "bench" / "quality.json").read_text())
    readme = (REPO / "README.md").read_text()
    block = readme.split(SPLITS_START)[1].split(SPLITS_END)[0]
    assert block.strip() == splits_table(data).strip()
    telco = {r["seed"]: r for r in data["datasets"]["telco_churn"]["splits"]}
    # The README's results are that split too, whichever table the checkout now holds ...
    readme_aucs = _readme_roc_aucs()
    for model in MODEL_KEYS:
        assert telco[42][model] == pytest.approx(readme_aucs[model], abs=5e-5), model
    # ... and so are the checkout's own metrics when it holds the shipped Telco table.
    if _checkout_holds_telco():
        metrics = _checkout_metrics()
        for model in MODEL_KEYS:
            assert telco[42][model] == pytest.approx(metrics[model]["roc_auc"], abs=1e-6), model
    assert len(telco) >= 10


def test_splits_table_pairs_differences_per_split():
    rows = [
        {"seed": 42, "tabm": 0.80, "logreg": 0.79, "lightgbm": 0.81},
        {"seed": 43, "tabm": 0.85, "logreg": 0.80, "lightgbm": 0.82},
    ]
    table = splits_table({"datasets": {"t": {"rows": 100, "splits": rows}}})
    # ours - LightGBM: -0.01 and +0.03 -> mean +0.01, sd 0.0283, se 0.0283/√2, one win of two.
    assert (
        "| t (100) | 2 | 0.8250 | 0.7950 | 0.8150 | +0.0100 ± 0.0283 (se 0.0200), 1/2 |" in table
    )
    assert "+0.0300 ± 0.0283 (se 0.0200), 2/2 | 0.8000 / 0.7900 / 0.8100 |" in table
    assert "(seeds 42–43);" in table
    # Tables of different splits (bench 7's newer tables have ten): each range says whose.
    two = {"t": {"rows": 1, "splits": rows}, "u": {"rows": 1, "splits": rows[:1]}}
    assert "(seeds 42–43 for t; 42–42 for u);" in splits_table({"datasets": two})
    text = f"x\n{SPLITS_START}\nold\n{SPLITS_END}\n"
    assert "\nold\n" not in replace_splits_block(
        text, {"datasets": {"t": {"rows": 1, "splits": rows}}}
    )


REGRESSION_METRICS = {
    "n_test": 600,
    "tabm": {"rmse": 33.5, "mae": 22.41, "r2": 0.312345},
    "logreg": {"rmse": 34.1, "mae": 23.0, "r2": 0.29},
    "lightgbm": {"rmse": 33.2, "mae": 22.1, "r2": 0.33},
}


def test_results_table_per_task_shows_the_tasks_metrics_to_4_digits():
    from retrain.task import make_task

    model = load_params(REPO / "params.yaml").model
    table = results_table(REGRESSION_METRICS, model, make_task("regression"))
    lines = table.splitlines()
    assert lines[0] == "| model | rmse | mae | r2 |"
    assert "| Ridge regression | 34.1000 | 23.0000 | 0.2900 |" in lines
    assert "| LightGBM (tuned) | 33.2000 | 22.1000 | 0.3300 |" in lines
    # RMSE: lower is better, so LightGBM is the better baseline and ours is 0.3 worse.
    assert lines[-1] == (
        "Test split: 600 rows (regression). Our rmse (lower is better) is worse than the "
        "better baseline (LightGBM (tuned)) by 0.3000."
    )
    multiclass = {
        "n_test": 10,
        **{
            k: {"log_loss": v, "roc_auc_ovr": 0.8, "accuracy": 0.7, "macro_f1": 0.5, "brier": 0.4}
            for k, v in (("tabm", 0.61), ("logreg", 0.7), ("lightgbm", 0.65))
        },
    }
    task = make_task("multiclass", classes=["F", "L", "M", "VF"])
    table = results_table(multiclass, model, task)
    assert (
        table.splitlines()[0] == "| model | log_loss | roc_auc_ovr | accuracy | macro_f1 | brier |"
    )
    assert "| Multinomial logistic regression | 0.7000 | 0.8000 |" in table
    assert "as good as or better than the better baseline (LightGBM (tuned)) by 0.0400." in table


def test_retrain_results_prints_a_regression_checkouts_table(
    tmp_path, default_params_raw, monkeypatch
):
    import copy

    from typer.testing import CliRunner

    from retrain.cli import app

    raw = copy.deepcopy(default_params_raw)
    raw["dataset"].update(task="regression", positive_class=None)
    raw["registry"]["gate"]["metric"] = "rmse"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "evaluate.json").write_text(json.dumps(REGRESSION_METRICS))
    out = CliRunner().invoke(app, ["results"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0] == "| model | rmse | mae | r2 |"
    assert "| Ridge regression | 34.1000 | 23.0000 | 0.2900 |" in out.output
