"""train.bag_folds through the real stages on a tiny table: prepare, tune (no trials), train,
evaluate and report. The threshold (binary) and the interval (regression) come from the
members' out-of-fold validation scores, not the served bag's in-sample ones; the card and the
report describe K fold models, and the report explains the served ensemble."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import log_loss

from retrain import testing
from retrain.config import Params
from retrain.data.splits import load_splits
from retrain.models import val_scores
from retrain.models.bag_workers import BagError
from retrain.models.intervals import conformal_half_width
from retrain.models.metrics import best_f1_threshold
from retrain.models.predictor import Predictor
from retrain.stages import evaluate, prepare, report, train, tune
from tests.conftest import REPO

pytestmark = pytest.mark.model

K = 2
CLASSES = ["low", "mid", "high"]


def _table(kind: str, rows: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal(rows), rng.standard_normal(rows)
    plan = rng.choice(["a", "b", "c"], rows)
    signal = x1 + 0.5 * x2 + (plan == "a")
    noisy = signal + rng.standard_normal(rows)
    if kind == "regression":
        target: Any = np.round(50 + 10 * noisy, 3)
    elif kind == "multiclass":
        target = np.array(CLASSES, dtype=object)[np.digitize(noisy, [0.0, 1.2])]
    else:
        target = np.where(noisy > 0.5, "y", "n")
    return pd.DataFrame({"x1": x1, "x2": x2, "plan": plan, "target": target})


def _params(tmp: Path, kind: str, raw: dict[str, Any]) -> Params:
    raw = copy.deepcopy(raw)
    table = tmp / "raw" / "table.csv"
    table.parent.mkdir(parents=True)
    _table(kind).to_csv(table, index=False)
    raw["paths"]["raw_data"] = str(table)
    dataset = raw["dataset"]
    dataset.update(name="tiny", target="target", task=kind, numeric=["x1", "x2"])
    dataset.update(categorical=["plan"], pii_allow=[])
    dataset["classes"] = CLASSES if kind == "multiclass" else None
    dataset["positive_class"] = "y" if kind == "binary" else None
    dataset.pop("id_column", None)
    raw["report"]["slices"] = raw["registry"]["gate"]["slices"] = ["plan"]
    raw["registry"]["gate"]["metric"] = {"binary": "roc_auc", "regression": "rmse"}.get(
        kind, "log_loss"
    )
    raw["prepare"]["fill_values"] = {}
    raw["tune"]["n_trials"] = 0
    raw["train"].update(max_epochs=3, patience=2, bag_folds=K)
    raw["report"].update(explain_rows=40, ig_steps=16)
    return testing.params_in(tmp / "out", raw, REPO)


def _pipeline(params: Params) -> None:
    prepare.run(params)
    tune.run(params)
    train.run(params)
    evaluate.run(params)


def _in_sample(params: Params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The validation targets, the bag's out-of-fold scores and the served bag's own."""
    x_val, y_val = load_splits(params.paths, ("train", "val")).matrix("val")
    served = Predictor(params.paths.preprocessor, params.paths.onnx_model).predict_matrix(x_val)
    return y_val, val_scores.read(params.paths.oof_val, len(y_val)), served


def test_a_bags_threshold_card_and_report_come_from_its_folds(tmp_path, small_params_raw):
    params = _params(tmp_path, "binary", small_params_raw)
    _pipeline(params)
    y_val, oof, served = _in_sample(params)
    assert not np.allclose(oof, served)  # the served bag has trained on the validation rows
    metrics = json.loads(params.paths.metrics.read_text())
    assert metrics["threshold"] == round(best_f1_threshold(y_val, oof), 6)
    assert metrics["threshold"] != round(best_f1_threshold(y_val, served), 6)
    card = json.loads(params.paths.model_card.read_text())
    splits = load_splits(params.paths, ("train", "val"))
    rows = len(splits.frames["train"]) + len(splits.frames["val"])
    assert card["bag_folds"] == K and card["data"]["rows"] == rows
    assert [m["seed"] for m in card["members"]] == [params.seed + i for i in range(K)]
    assert sum(m["held_out_rows"] for m in card["members"]) == rows
    assert {"best_epoch", "epochs_run", "stopped_by"} <= set(card["members"][0])
    assert "best_epoch" not in card and "stopped_by" not in card  # no member is the model
    result = report.run(params)  # explains the checkpoint, checked against the served ONNX
    # The temperature, too, is fitted on the out-of-fold scores.
    fitted = json.loads(params.paths.calibration_metrics.read_text())
    assert fitted["fitted_on"] == "val, out of fold (train.bag_folds)"
    assert fitted["val"]["log_loss_before"] == pytest.approx(log_loss(y_val, oof), abs=1e-6)
    assert fitted["val"]["log_loss_before"] != pytest.approx(log_loss(y_val, served), abs=1e-6)
    assert "The mean of 2 fold models, each one: an ensemble of" in result.card
    assert "best epoch / epochs run, per member" in result.card
    assert "(best F1 on the members' out-of-fold validation scores)" in result.card
    assert "| best epoch / epochs run |" not in result.card


def test_a_bags_interval_is_fitted_on_out_of_fold_residuals(tmp_path, small_params_raw):
    params = _params(tmp_path, "regression", small_params_raw)
    _pipeline(params)
    y_val, oof, served = _in_sample(params)
    interval = json.loads(params.paths.intervals.read_text())
    level = params.train.interval_level
    assert interval["half_width"] == pytest.approx(conformal_half_width(y_val - oof, level))
    assert interval["half_width"] != pytest.approx(conformal_half_width(y_val - served, level))
    card = report.run(params).card  # card_task's wording, for the tasks other than binary
    assert "The mean of 2 fold models, each one: an ensemble of" in card
    assert "validation RMSE on each member's held-out fold (early stopping)" in card
    assert "| best epoch / epochs run |" not in card


def test_a_multiclass_bags_temperature_is_fitted_out_of_fold(tmp_path, small_params_raw):
    params = _params(tmp_path, "multiclass", small_params_raw)
    _pipeline(params)
    y_val, oof, served = _in_sample(params)
    assert oof.shape == served.shape == (len(y_val), 3)
    np.testing.assert_allclose(oof.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    result = report.run(params)
    fitted = json.loads(params.paths.calibration_metrics.read_text())
    labels = [0, 1, 2]
    assert fitted["val"]["log_loss_before"] == pytest.approx(
        log_loss(y_val, oof, labels=labels), abs=1e-6
    )
    assert fitted["val"]["log_loss_before"] != pytest.approx(
        log_loss(y_val, served, labels=labels), abs=1e-6
    )
    assert "validation log loss on each member's held-out fold" in result.card


def test_without_a_bag_the_calibration_scores_are_the_served_models(tmp_path, small_params_raw):
    raw = copy.deepcopy(small_params_raw)
    params = _params(tmp_path, "binary", raw)
    params = params.model_copy(update={"train": params.train.model_copy(update={"bag_folds": 0})})
    _pipeline(params)
    y_val, written, served = _in_sample(params)
    assert np.array_equal(written, served)
    metrics = json.loads(params.paths.metrics.read_text())
    assert metrics["threshold"] == round(best_f1_threshold(y_val, served), 6)
    card = json.loads(params.paths.model_card.read_text())
    assert "bag_folds" not in card and "members" not in card and card["best_epoch"] >= 1


def _with_train(params: Params, **update: Any) -> Params:
    return params.model_copy(update={"train": params.train.model_copy(update=update)})


@pytest.mark.engines  # two spawned processes per bag (~3 s each to import torch)
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_train_workers_write_the_same_bytes_and_a_failed_member_writes_no_model(
    tmp_path, small_params_raw
):
    params = _params(tmp_path, "regression", small_params_raw)
    prepare.run(params)
    tune.run(params)
    train.run(params)
    paths = params.paths
    outputs = (paths.checkpoint, paths.onnx_model, paths.oof_val, paths.model_card)
    outputs += (paths.intervals,)
    one_at_a_time = {path: path.read_bytes() for path in outputs}
    train.run(_with_train(params, workers=2))
    assert {path: path.read_bytes() for path in outputs} == one_at_a_time
    # Members that cannot start (no GPU here): the stage fails with the line of the one that
    # exits first (both fail at once), and writes none of its outputs.
    for path in outputs:
        path.unlink()
    with pytest.raises(BagError) as raised:
        train.run(_with_train(params, workers=2, accelerator="gpu"))
    message = str(raised.value)
    starts = [
        f"train.bag_folds: member {i + 1}/2 (seed {params.seed + i}) raised " for i in (0, 1)
    ]
    assert message.startswith(tuple(starts)), message
    assert message.endswith("; no model written") and "\n" not in message
    assert not any(path.exists() for path in outputs)
