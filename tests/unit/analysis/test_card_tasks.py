"""The model card of a multiclass and of a regression model, built from the report stage's own
helpers on synthetic predictions: task wording, no binary wording left."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from retrain.analysis.card import CardInputs, render_markdown
from retrain.analysis.slices import SliceRule, slice_metrics
from retrain.config import Params, load_params
from retrain.model_key import OURS
from retrain.stages import report
from retrain.task import MulticlassTask, RegressionTask
from tests.conftest import REPO

CLASSES = ["F", "L", "M", "VF"]
# Sentences of a binary card that must not appear in another task's card.
BINARY_WORDING = (
    "positive",
    "threshold",
    "log-odds",
    "ROC AUC (early stopping)",
    "best F1",
    "sigmoid",
    "`None`",
)


def _params(tmp_path: Path, task: str) -> Params:
    params = load_params(REPO / "params.yaml")
    dataset = params.dataset.model_copy(
        update={"task": task, "classes": CLASSES if task == "multiclass" else None}
    )
    paths = params.paths.model_copy(update={"intervals": tmp_path / "intervals.json"})
    return params.model_copy(update={"dataset": dataset, "paths": paths})


def _train(monitor: str, value: float) -> dict[str, Any]:
    return {
        "model": "tabm-mini",
        "params": {
            "hidden_dim": 8,
            "n_layers": 1,
            "dropout": 0.0,
            "lr": 0.01,
            "weight_decay": 0.0,
            "batch_size": 32,
            "k": 4,
        },
        "dataset": "t",
        "n_inputs": 5,
        "seed": 1,
        "device": "cpu",
        "metrics": {monitor: value},
        "best_epoch": 3,
        "epochs_run": 9,
        "stopped_by": "early_stopping",
        "still_improving": False,
        "data": {"path": "d.csv", "md5": "abc"},
        "git_revision": "deadbeef",
    }


def _inputs(params: Params, train: dict[str, Any], **outputs: Any) -> CardInputs:
    paths = ("onnx_model", "preprocessor", "slice_metrics", "attributions", "intervals")
    return CardInputs(
        dataset=params.dataset.model_dump(mode="json"),
        train=train,
        prepare={"rows_in": 900, "rows_out": 900, "rows": {"val": 300}, "n_features": 5},
        top_features=10,
        paths={k: k for k in paths},
        **outputs,
    )


def _attributions(target: str, baseline: Any, per_class: bool) -> dict[str, Any]:
    columns = {
        "age": {"rank": 1, "mean_abs": 0.8, "share": 0.6, "mean": 0.1},
        "region": {"rank": 2, "mean_abs": 0.5, "share": 0.4, "mean": -0.1},
    }
    out = {
        "target": target,
        "rows": 60,
        "n_steps": 50,
        "baseline": "train_mean",
        "baseline_score": baseline,
        "max_abs_delta": 1e-5,
        "columns": columns,
        "correlated": [],
    }
    if per_class:
        out["per_class"] = {c: {"rows": 15, "columns": columns} for c in CLASSES}
    return out


def test_a_multiclass_card_names_its_classes_and_reads_log_loss(tmp_path):
    params = _params(tmp_path, "multiclass")
    rng = np.random.default_rng(0)
    n = 600
    p = softmax(3 * rng.normal(size=(n, 4)) + np.log([0.5, 0.1, 0.15, 0.25]), axis=1)
    y = np.array([rng.choice(4, p=softmax(np.log(row) / 3)) for row in p])  # overconfident p
    frame = pd.DataFrame({"region": rng.choice(["a", "b"], n)})
    task = MulticlassTask(CLASSES)
    slices = slice_metrics(
        frame, y, p, ["region"], threshold=0.0, rule=SliceRule(50, 10), task=task
    )
    val, test = (y[:300], p[:300]), (y[300:], p[300:])
    calibration = report._multiclass_calibration(params, val, test)
    assert calibration["applied"] and calibration["temperature"] > 1.5
    curves = report._curves(task, test, calibration, 10)
    evaluate = {"n_test": 300, **{k: {"log_loss": 0.9, "accuracy": 0.6} for k in (OURS, "logreg")}}
    card = render_markdown(
        _inputs(
            params,
            _train("val/log_loss", 0.91),
            evaluate=evaluate,
            slices=slices,
            calibration={**calibration, "reliability": curves},
            attributions=_attributions("log_probability", {"F": 0.4}, per_class=True),
        )
    )
    shares = slices["class_rows"]
    assert "gives the probability of each class of `churn`: `F`, `L`, `M`, `VF`." in card
    assert f"`L` {100 * shares['L'] / n:.1f}%" in card
    assert "validation log loss (early stopping) | 0.9100" in card
    assert "macro ROC AUC (one-vs-rest)" in card and "ECE (top class)" in card
    assert "softmax(log(probabilities) /" in card and "log-probability of each row's" in card
    assert "Per predicted class" in card
    for words in BINARY_WORDING:
        assert words not in card, words


def test_a_regression_card_names_the_target_s_scale_errors_and_coverage(tmp_path):
    params = _params(tmp_path, "regression")
    rng = np.random.default_rng(1)
    n = 400
    f = rng.uniform(50, 150, n)
    y = f + rng.normal(0, 10, n)
    frame = pd.DataFrame({"region": rng.choice(["a", "b"], n)})
    slices = slice_metrics(
        frame, y, f, ["region"], threshold=0.0, rule=SliceRule(50, 10), task=RegressionTask()
    )
    params.paths.intervals.write_text(json.dumps({"level": 0.9, "half_width": 16.4, "n_val": 300}))
    calibration = report._regression_calibration(params, (y, f))
    iv = calibration["interval"]
    inside = float(np.mean(np.abs(y - f) <= 16.4))
    assert iv["coverage"] == pytest.approx(inside) and iv["miss"] == pytest.approx(
        abs(inside - 0.9)
    )
    evaluate = {
        "n_test": n,
        **{k: {"rmse": 10.0, "mae": 8.0, "r2": 0.8} for k in (OURS, "logreg")},
    }
    card = render_markdown(
        _inputs(
            params,
            _train("val/rmse", 0.5),
            evaluate=evaluate,
            slices=slices,
            calibration={**calibration, "reliability": {"before": [], "after": []}},
            attributions=_attributions("value", 99.5, per_class=False),
        )
    )
    t = slices["target"]
    assert f"target `churn` on test | mean {t['mean']:.4g}, sd {t['std']:.4g}" in card
    assert "| RMSE | MAE | R² |" in card
    assert f"covers {inside:.4f} of the test rows" in card
    assert "prediction ± 16.4 (90% split-conformal" in card
    assert "in units of `churn`" in card and "A regression model has no ECE" in card
    for words in (*BINARY_WORDING, "temperature", "ECE (top class)", "class"):
        assert words not in card.replace("classification", ""), words


def test_a_binary_card_is_rendered_as_before():
    # The binary dataset (no task key, as a card's inputs were before tasks): its own wording.
    from tests.unit.analysis.test_card import _inputs as binary_inputs

    card = render_markdown(binary_inputs())
    assert "scores the probability that `churn` is `Yes`" in card


def _bare_inputs(tmp_path: Path, kind: str, attributions: dict[str, Any]) -> CardInputs:
    """A task's card inputs with no metrics, slices or calibration (one section's tests)."""
    return _inputs(
        _params(tmp_path, kind),
        _train("val/rmse", 0.5),
        evaluate={},
        slices={},
        calibration={},
        attributions=attributions,
    )


def test_the_linear_baseline_is_named_for_the_task(tmp_path):
    from retrain.analysis.card_task import _names, task_of

    for kind, name in (("multiclass", "Multinomial logistic regression"), ("regression", "Ridge")):
        inputs = _bare_inputs(tmp_path, kind, {})
        assert _names(inputs, task_of(inputs))["logreg"].startswith(name)


def test_the_data_section_names_the_target_encoded_columns(tmp_path):
    """A high-cardinality column is named as target + frequency encoded (issue 27), with the
    out-of-fold fit; a table without one keeps the sentence it had. One function writes the
    Data section of every task's card."""
    from retrain.analysis.card_parts import data_section

    params = _params(tmp_path, "binary")
    unused: dict[str, Any] = {"evaluate": {}, "slices": {}, "calibration": {}, "attributions": {}}
    plain = _inputs(params, _train("val/roc_auc", 0.8), **unused)
    dataset = {**plain.dataset, "high_cardinality": ["payment_method"]}
    encoded = CardInputs(**{**plain.__dict__, "dataset": dataset})
    before = "\n".join(data_section(plain, ["target", "t"], "seeded"))
    after = "\n".join(data_section(encoded, ["target", "t"], "seeded"))
    assert "encoded" not in before and "training split only. Validation" in before
    assert "after one-hot; `payment_method` target + frequency encoded)" in after
    assert "(target encoding: out of fold on its own rows)" in after


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("multiclass", "the change in the predicted class's log-probability"),
        ("regression", "the change in the prediction"),
    ],
)
def test_a_large_completeness_error_is_said_in_the_binary_cards_words(tmp_path, kind, change):
    # One Explanations section for every task (card_parts.explanations): the warning gives the
    # error's share of the top attribution and what fails to add up, in the task's terms.
    from retrain.analysis.card_task import _explanations, task_of

    attributions = _attributions("x", 110.0, per_class=kind == "multiclass")
    inputs = _bare_inputs(tmp_path, kind, {**attributions, "max_abs_delta": 0.5})
    text = "\n".join(_explanations(inputs, task_of(inputs)))
    assert "**The completeness error is large**: 5.00e-01 is 62% of the top column's" in text
    assert f"do not add up to {change} and their ranking is approximate" in text
    assert ("Per predicted class" in text) == (kind == "multiclass")
