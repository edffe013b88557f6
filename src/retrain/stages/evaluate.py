"""Stage `evaluate`: test metrics for our model and two baselines, plus DVC plots.

Scores come from the exported ONNX model, so what is evaluated is what will be served. Per
task (retrain.task): binary has a decision threshold (best F1 on validation), ROC, PR,
calibration and confusion plots; multiclass the task's metrics, per-class precision/recall
and a confusion matrix by class name; regression RMSE/MAE/R², residual and
predicted-vs-actual plots. Which plot files a task has: retrain.models.plots.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.config import Params
from retrain.data.splits import load_splits
from retrain.errors import DataError
from retrain.files import write_json
from retrain.model_key import OURS
from retrain.models import baselines, val_scores
from retrain.models.metrics import (
    GRID,
    best_f1_threshold,
    calibration_points,
    classification_metrics,
    expected_calibration_error,
    interval_coverage,
    per_class,
    pr_points,
    roc_points,
    task_metrics,
)
from retrain.models.predictor import Predictor
from retrain.report import results_table
from retrain.stages._common import stage_main
from retrain.task import MulticlassTask, RegressionTask, Task, task_for

# Regression's scatter plots draw at most this many test rows (a seeded sample): a browser
# draws a few thousand points at once; 200k would freeze the plots page.
PLOT_ROWS = 2000


def _model_scores(params: Params, splits: Any, task: Task) -> dict[str, dict[str, np.ndarray]]:
    """Validation and test predictions (the task's shape) of our model and of each baseline."""
    paths = params.paths
    train, val, test = (splits.matrix(s) for s in ("train", "val", "test"))
    ours = Predictor(paths.preprocessor, paths.onnx_model)
    linear = baselines.linear(task, train, params.seed)
    lgbm = baselines.tuned_lightgbm(train, val, params.evaluate.lightgbm, params.seed, task)
    return {
        OURS: {"val": ours.predict_matrix(val[0]), "test": ours.predict_matrix(test[0])},
        "logreg": {
            "val": baselines.scores(linear, val[0], task),
            "test": baselines.scores(linear, test[0], task),
        },
        "lightgbm": {
            "val": baselines.scores(lgbm, val[0], task),
            "test": baselines.scores(lgbm, test[0], task),
        },
    }


def _write_plots(
    params: Params, y: np.ndarray, scores: dict[str, np.ndarray], threshold: float
) -> None:
    paths, bins = params.paths, params.evaluate.calibration_bins
    roc = {name: roc_points(y, p) for name, p in scores.items()}
    pr = {name: pr_points(y, p) for name, p in scores.items()}
    write_json(
        paths.roc_plot,
        [
            {"fpr": round(float(x), 4), **{n: round(float(v[i]), 6) for n, v in roc.items()}}
            for i, x in enumerate(GRID)
        ],
    )
    write_json(
        paths.pr_plot,
        [
            {"recall": round(float(x), 4), **{n: round(float(v[i]), 6) for n, v in pr.items()}}
            for i, x in enumerate(GRID)
        ],
    )
    write_json(paths.calibration_plot, calibration_points(y, scores[OURS], bins))
    predicted = scores[OURS] >= threshold
    _write_confusion(paths.confusion_plot, y.astype(int).tolist(), predicted.astype(int).tolist())


def _write_confusion(path: Path, actual: list[Any], predicted: list[Any]) -> None:
    """One row per test row: its actual and predicted label (0/1, or a class's name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["actual", "predicted"])
        writer.writerows(zip(actual, predicted, strict=True))


def _binary(
    params: Params, splits: Any, scores: dict[str, dict[str, np.ndarray]]
) -> tuple[dict[str, Any], pd.DataFrame]:
    cfg = params.evaluate
    y_val, y_test = splits.matrix("val")[1], splits.matrix("test")[1]
    # A bag's validation rows are trained on: its threshold is the best F1 on the members'
    # out-of-fold scores (retrain.models.val_scores); one model's are its own.
    ours_val = val_scores.for_calibration(params, scores[OURS]["val"])
    threshold = (
        best_f1_threshold(y_val, ours_val) if cfg.threshold == "f1_on_val" else cfg.threshold
    )
    metrics: dict[str, Any] = {
        "threshold": round(float(threshold), 6),
        "n_test": len(y_test),
    }
    for name, s in scores.items():
        # Each baseline gets its own best-F1 threshold on validation, the same rule as ours.
        t = threshold if name == OURS else best_f1_threshold(y_val, s["val"])
        metrics[name] = classification_metrics(y_test, s["test"], t)
    metrics[OURS]["ece"] = expected_calibration_error(
        y_test, scores[OURS]["test"], cfg.calibration_bins
    )
    write_json(params.paths.metrics, metrics)
    _write_plots(params, y_test, {n: s["test"] for n, s in scores.items()}, threshold)
    predictions = pd.DataFrame(
        {"actual": y_test.astype(int), **{n: s["test"] for n, s in scores.items()}}
    )
    return metrics, predictions


def _multiclass(
    params: Params, task: MulticlassTask, y: np.ndarray, scores: dict[str, np.ndarray]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The task's metrics per model, our per-class precision/recall, the confusion plot by
    class name; the predictions: actual class, then each model's probability per class."""
    names = np.array([str(c) for c in task.classes], dtype=object)
    metrics: dict[str, Any] = {"n_test": len(y)}
    metrics |= {name: task_metrics(task, y, p) for name, p in scores.items()}
    metrics["per_class"] = per_class(task, y, scores[OURS])  # ours, by class name
    write_json(params.paths.metrics, metrics)
    actual, predicted = names[y.astype(int)], names[scores[OURS].argmax(axis=1)]
    _write_confusion(params.paths.confusion_plot, actual.tolist(), predicted.tolist())
    columns: dict[str, Any] = {"actual": names[y.astype(int)]}
    for name, p in scores.items():
        columns |= {f"{name}:{c}": p[:, i] for i, c in enumerate(names)}
    return metrics, pd.DataFrame(columns)


def _interval(path: Path) -> dict[str, float]:
    """The prediction interval `train` fitted on validation: its level and half-width."""
    try:
        fitted = json.loads(path.read_text())
        return {"level": float(fitted["level"]), "half_width": float(fitted["half_width"])}
    except FileNotFoundError:
        raise DataError(
            f"{path}: no prediction interval; `train` writes it for a regression task"
        ) from None
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: not an interval (level, half_width): {err}") from None


def _regression(
    params: Params, task: RegressionTask, y: np.ndarray, scores: dict[str, np.ndarray]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """RMSE/MAE/R² per model, the residual and predicted-vs-actual plots of ours (a seeded
    sample of at most PLOT_ROWS rows); the predictions: actual, then each model's value."""
    y = y.astype(np.float64)
    interval = _interval(params.paths.intervals)
    metrics: dict[str, Any] = {"n_test": len(y), "interval": interval}
    metrics |= {name: task_metrics(task, y, v) for name, v in scores.items()}
    # The served interval (value ± half_width, fitted on validation by `train`) on test rows.
    metrics[OURS]["coverage"] = interval_coverage(y, scores[OURS], interval["half_width"])
    write_json(params.paths.metrics, metrics)
    rows = np.arange(len(y))
    if len(y) > PLOT_ROWS:
        rows = np.sort(np.random.default_rng(params.seed).permutation(len(y))[:PLOT_ROWS])
    actual, predicted = y[rows], scores[OURS][rows]
    write_json(
        params.paths.residuals_plot,
        [
            {"predicted": round(float(p), 6), "residual": round(float(a - p), 6)}
            for a, p in zip(actual, predicted, strict=True)
        ],
    )
    write_json(
        params.paths.predicted_vs_actual_plot,
        [
            {"actual": round(float(a), 6), "predicted": round(float(p), 6)}
            for a, p in zip(actual, predicted, strict=True)
        ],
    )
    return metrics, pd.DataFrame({"actual": y, **scores})


def run(params: Params) -> dict[str, Any]:
    paths = params.paths
    task = task_for(params.dataset)
    splits = load_splits(paths)
    scores = _model_scores(params, splits, task)
    y_test = splits.matrix("test")[1]
    test = {name: s["test"] for name, s in scores.items()}
    if isinstance(task, MulticlassTask):
        metrics, predictions = _multiclass(params, task, y_test, test)
    elif isinstance(task, RegressionTask):
        metrics, predictions = _regression(params, task, y_test, test)
    else:
        metrics, predictions = _binary(params, splits, scores)
    if params.dataset.id_column:
        predictions.insert(
            0, params.dataset.id_column, splits.frames["test"][params.dataset.id_column]
        )
    paths.predictions.parent.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(paths.predictions, index=False)
    paths.results_table.parent.mkdir(parents=True, exist_ok=True)
    paths.results_table.write_text(results_table(metrics, params.model, task))
    print(results_table(metrics, params.model, task))
    return metrics


def main() -> None:
    stage_main("evaluate", run)


if __name__ == "__main__":
    main()
