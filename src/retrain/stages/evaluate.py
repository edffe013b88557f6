"""Stage `evaluate`: test metrics for our model and two baselines, plus DVC plots.

Scores come from the exported ONNX model, so what is evaluated is what will be served.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.config import Params
from retrain.data.splits import load_splits
from retrain.files import write_json
from retrain.model_key import OURS
from retrain.models import baselines
from retrain.models.metrics import (
    GRID,
    best_f1_threshold,
    calibration_points,
    classification_metrics,
    expected_calibration_error,
    pr_points,
    roc_points,
)
from retrain.models.predictor import Predictor
from retrain.report import results_table
from retrain.stages._common import stage_main


def _model_scores(params: Params, splits: Any) -> dict[str, dict[str, np.ndarray]]:
    """Validation and test scores of our model and of each baseline."""
    paths = params.paths
    train, val, test = (splits.matrix(s) for s in ("train", "val", "test"))
    ours = Predictor(paths.preprocessor, paths.onnx_model)
    logreg = baselines.logistic_regression(train, params.seed)
    lgbm = baselines.tuned_lightgbm(train, val, params.evaluate.lightgbm, params.seed)
    return {
        OURS: {"val": ours.predict_matrix(val[0]), "test": ours.predict_matrix(test[0])},
        "logreg": {
            "val": baselines.scores(logreg, val[0]),
            "test": baselines.scores(logreg, test[0]),
        },
        "lightgbm": {
            "val": baselines.scores(lgbm, val[0]),
            "test": baselines.scores(lgbm, test[0]),
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
    _write_confusion(paths.confusion_plot, y, scores[OURS] >= threshold)


def _write_confusion(path: Path, y: np.ndarray, predicted: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["actual", "predicted"])
        writer.writerows(zip(y.astype(int).tolist(), predicted.astype(int).tolist(), strict=True))


def run(params: Params) -> dict[str, Any]:
    paths, cfg = params.paths, params.evaluate
    splits = load_splits(paths)
    y_val, y_test = splits.matrix("val")[1], splits.matrix("test")[1]
    scores = _model_scores(params, splits)
    ours_val = scores[OURS]["val"]
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
    write_json(paths.metrics, metrics)
    _write_plots(params, y_test, {n: s["test"] for n, s in scores.items()}, threshold)
    predictions = pd.DataFrame(
        {"actual": y_test.astype(int), **{n: s["test"] for n, s in scores.items()}}
    )
    if params.dataset.id_column:
        predictions.insert(
            0, params.dataset.id_column, splits.frames["test"][params.dataset.id_column]
        )
    paths.predictions.parent.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(paths.predictions, index=False)
    paths.results_table.parent.mkdir(parents=True, exist_ok=True)
    paths.results_table.write_text(results_table(metrics, params.model))
    print(results_table(metrics, params.model))
    return metrics


def main() -> None:
    stage_main("evaluate", run)


if __name__ == "__main__":
    main()
