"""`retrain predict`'s output per task (issue 26): binary's probability and label as before,
a multiclass model's predicted class and one probability column per class (in the pinned
order), a regression model's value and its interval from intervals.json. A tiny ONNX model
in each task's output shape (tests/task_models.py) stands for the trained one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain.config import load_params_at
from retrain.errors import DataError
from retrain.registry.versions import ModelVersion
from tests import task_models as tm
from tests.conftest import REPO

NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
VERSION = ModelVersion("toy-model", "v2.0.0", "0" * 40)


def _setup(tmp_path: Path, kind: str):
    root = tm.checkout(tmp_path / "repo", REPO / "params.yaml", kind)
    params = load_params_at(root)
    onnx, pre = tm.write_model(tmp_path / "served", kind)
    return params, onnx, pre


def test_binary_scores_are_the_probability_and_label_as_before(tmp_path):
    from retrain.registry.serving import ServedModel
    from retrain.scoring import score_frame

    params, onnx, pre = _setup(tmp_path, "binary")
    rows = tm.table(9)
    out = score_frame(rows, params, ServedModel(VERSION, onnx, pre, 0.4), now=NOW)
    assert list(out.columns) == [
        "row_id",
        "probability",
        "label",
        "model_version",
        "registry_version",
        "scored_at",
    ]
    p = tm.expected("binary", pre, rows)
    assert out.probability.to_numpy() == pytest.approx(p, abs=1e-6)
    assert out.label.tolist() == (out.probability >= 0.4).astype(int).tolist()
    assert out.label.dtype == np.int64 and set(out.registry_version) == {"toy-model@v2.0.0"}


def test_multiclass_scores_are_the_class_and_every_class_s_probability(tmp_path):
    from retrain.predicting import write_scores
    from retrain.registry.serving import ServedModel
    from retrain.scoring import score_frame

    params, onnx, pre = _setup(tmp_path, "multiclass")
    rows = tm.table(30)
    out = score_frame(rows, params, ServedModel(VERSION, onnx, pre, None), now=NOW)
    probs = [f"probability_{c}" for c in tm.CLASSES]  # dataset.classes' order, not sorted
    assert list(out.columns) == [
        "row_id",
        "predicted_class",
        *probs,
        "model_version",
        "registry_version",
        "scored_at",
    ]
    p = tm.expected("multiclass", pre, rows)
    assert out[probs].to_numpy() == pytest.approx(p, abs=1e-6)
    assert out.predicted_class.tolist() == [tm.CLASSES[i] for i in p.argmax(axis=1)]
    assert len(set(out.predicted_class)) > 1  # the toy model does pick different classes
    assert out[probs].sum(axis=1).to_numpy() == pytest.approx(np.ones(30))
    back = pd.read_csv(write_scores(out, tmp_path / "scores.csv"))  # a user's file
    assert list(back.columns) == list(out.columns) and back.predicted_class.tolist() == list(
        out.predicted_class
    )


def _intervals(path: Path, half_width: float = 4.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"level": 0.8, "half_width": half_width, "n_val": 120}))
    return path


def test_regression_scores_are_the_value_and_its_interval(tmp_path):
    from retrain.registry.serving import ServedModel
    from retrain.scoring import Interval, score_frame

    params, onnx, pre = _setup(tmp_path, "regression")
    intervals = _intervals(tmp_path / "served" / "intervals.json")
    served = ServedModel(VERSION, onnx, pre, None, intervals, Interval.load(intervals))
    rows = tm.table(10)
    out = score_frame(rows, params, served, now=NOW)
    assert list(out.columns) == [
        "row_id",
        "prediction",
        "interval_lower",
        "interval_upper",
        "interval_level",
        "model_version",
        "registry_version",
        "scored_at",
    ]
    v = tm.expected("regression", pre, rows)
    assert out.prediction.to_numpy() == pytest.approx(v, abs=1e-4)
    assert (out.interval_upper - out.prediction).to_numpy() == pytest.approx(np.full(10, 4.0))
    assert (out.prediction - out.interval_lower).to_numpy() == pytest.approx(np.full(10, 4.0))
    assert set(out.interval_level) == {0.8}


def test_the_workspace_regression_model_reads_paths_intervals(tmp_path):
    """Without a registered version (`model=None`): the workspace's model, preprocessor and
    intervals.json; a model without its interval is one error naming the file."""
    import shutil

    from retrain.scoring import score_frame

    params, onnx, pre = _setup(tmp_path, "regression")
    paths = params.paths
    for src, dst in ((onnx, paths.onnx_model), (pre, paths.preprocessor)):
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    rows = tm.table(5)
    with pytest.raises(DataError, match=f"{paths.intervals}: not found"):
        score_frame(rows, params)
    _intervals(paths.intervals, half_width=2.5)
    out = score_frame(rows, params)
    assert (out.interval_upper - out.interval_lower).to_numpy() == pytest.approx(np.full(5, 5.0))
    assert set(out.registry_version) == {""}


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("not json", "not a prediction interval"),
        ('{"level": 0.9}', "not a prediction interval (KeyError"),
        ('{"level": 1.5, "half_width": 2, "n_val": 5}', "level 1.5 must be in (0, 1)"),
        ('{"level": 0.9, "half_width": -1, "n_val": 5}', "half_width -1.0"),
    ],
)
def test_a_broken_intervals_file_is_one_line_naming_it(tmp_path, content, says):
    from retrain.scoring import Interval

    path = tmp_path / "intervals.json"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        Interval.load(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and says in message and "\n" not in message


def test_a_model_that_does_not_match_the_task_is_refused(tmp_path):
    """A multiclass model trained for other classes than params.yaml pins: refused, never
    shown with the wrong class names."""
    from retrain.scoring import ModelMismatch, scores_for
    from retrain.task import MulticlassTask, RegressionTask

    four = np.full((2, 4), 0.25)
    with pytest.raises(ModelMismatch, match=r"shape \(2, 4\); a multiclass: 3 classes"):
        scores_for(MulticlassTask(["a", "b", "c"]), four)
    with pytest.raises(ModelMismatch, match="shape"):
        scores_for(RegressionTask(), four)
    assert scores_for(MulticlassTask(["a", "b", "c", "d"]), four).rows()[0]["class"] == "a"
