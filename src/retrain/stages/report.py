"""Stage `report`: explanations, slice metrics, calibration and the model card of the model.

Reads what train and evaluate wrote (the checkpoint for attributions, the ONNX model for
scores, model_card.json, metrics/evaluate.json; a regression model's paths.intervals) and
writes machine-readable metrics, two DVC plots and the model card as Markdown and HTML.

Per task (`retrain.task`): slices score the task's metrics; calibration is temperature scaling
(binary: on the logit; multiclass: on the log-probabilities, ECE on the top class) or, for
regression, the test coverage of the conformal interval; attributions explain the logit, the
predicted class's log-probability, or the value (`retrain.analysis.attributions`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import expit

from retrain.analysis.attributions import (
    EXPLAINED,
    Attributions,
    baseline_row,
    global_attributions,
    integrated_gradients,
    load_network,
    per_class_attributions,
    source_columns,
)
from retrain.analysis.calibration import (
    ConformalInterval,
    coverage_report,
    fit_temperature,
    no_scaling,
    scale,
    scale_any,
    top_class,
    top_class_ece,
)
from retrain.analysis.card import CardInputs, render_html, render_markdown
from retrain.analysis.correlation import correlated_pairs
from retrain.analysis.slices import SliceRule, slice_metrics
from retrain.config import Params
from retrain.data.splits import Splits, load_splits
from retrain.errors import RetrainError
from retrain.files import write_json
from retrain.models import val_scores
from retrain.models.metrics import (
    calibration_points,
    classification_metrics,
    expected_calibration_error,
)
from retrain.models.predictor import Predictor
from retrain.stages._common import stage_main
from retrain.task import Task, task_for

# The explained network must be the served one: its sigmoid must match the ONNX scores.
PARITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ReportResult:
    slices: dict[str, Any]
    calibration: dict[str, Any]
    attributions: dict[str, Any]
    card: str


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise RetrainError(f"{path}: not found; run `dvc repro` (or `dvc pull`) first") from None
    return data


def _calibration(
    params: Params,
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    threshold: float,
) -> dict[str, Any]:
    cfg, bins = params.report, params.evaluate.calibration_bins
    (y_val, p_val), (y_test, p_test) = val, test
    if cfg.temperature_scaling:
        fit = fit_temperature(y_val, p_val, min_gain=cfg.min_log_loss_gain)
    else:
        fit = no_scaling(y_val, p_val, min_gain=cfg.min_log_loss_gain)
    scaled = scale(p_test, fit.temperature)

    def summary(p: np.ndarray) -> dict[str, float]:
        m = classification_metrics(y_test, p, threshold)
        return {
            "log_loss": m["log_loss"],
            "brier": m["brier"],
            "ece": expected_calibration_error(y_test, p, bins),
        }

    return {
        "temperature": fit.temperature,
        "applied": fit.applied,
        "enabled": cfg.temperature_scaling,
        "fitted_on": "val",
        "min_log_loss_gain": fit.min_log_loss_gain,
        "val": {
            "log_loss_before": fit.val_log_loss_before,
            "log_loss_after": fit.val_log_loss_after,
        },
        "test": {"before": summary(p_test), "after": summary(scaled)},
        # Monotone scaling: this threshold on calibrated scores makes the same decisions.
        "threshold_after": round(float(scale(np.array([threshold]), fit.temperature)[0]), 6),
        "bins": bins,
    }


def _multiclass_calibration(
    params: Params, val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]
) -> dict[str, Any]:
    """Temperature scaling of the log-probabilities (one T, fitted on validation); the test
    log loss, Brier score and top-class ECE before and after. The predicted class of every
    row is the same either way, so there is no threshold to move."""
    from retrain.analysis.slices import task_metrics
    from retrain.task import MulticlassTask

    cfg, bins = params.report, params.evaluate.calibration_bins
    (y_val, p_val), (y_test, p_test) = val, test
    fitter = fit_temperature if cfg.temperature_scaling else no_scaling
    fit = fitter(y_val, p_val, min_gain=cfg.min_log_loss_gain)
    task = MulticlassTask(params.dataset.classes or ())

    def summary(p: np.ndarray) -> dict[str, float | None]:
        m = task_metrics(task, y_test, p)
        return {
            "log_loss": m["log_loss"],
            "brier": m["brier"],
            "ece": top_class_ece(y_test, p, bins),
        }

    return {
        "task": "multiclass",
        "temperature": fit.temperature,
        "applied": fit.applied,
        "enabled": cfg.temperature_scaling,
        "fitted_on": "val",
        "min_log_loss_gain": fit.min_log_loss_gain,
        "val": {
            "log_loss_before": fit.val_log_loss_before,
            "log_loss_after": fit.val_log_loss_after,
        },
        "test": {"before": summary(p_test), "after": summary(scale_any(p_test, fit.temperature))},
        "ece_on": "top class",
        "bins": bins,
    }


def _regression_calibration(params: Params, test: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """The conformal interval (paths.intervals, fitted on validation by `train`) and the share
    of test rows it covers; the promotion gate judges that share against its level."""
    interval = ConformalInterval.load(params.paths.intervals)
    report = coverage_report(*test, interval)
    return {"task": "regression", "fitted_on": "val", "interval": report}


def _served(task: Task, result: Attributions) -> np.ndarray:
    """What the ONNX model serves for the explained rows, from the explained output: the
    probability (binary), the predicted class's probability (multiclass), the value."""
    if task.kind == "binary":
        return np.asarray(expit(result.logits))
    if task.kind == "multiclass":
        return np.exp(result.logits)
    return result.logits


def _check_parity(params: Params, task: Task, result: Attributions, served: np.ndarray) -> None:
    """The explained network must be the served one (PARITY_TOLERANCE; relative for a value)."""
    if task.kind == "multiclass" and result.classes is not None:
        served = served[np.arange(len(served)), result.classes]
    gap = float(np.abs(_served(task, result) - served).max()) if len(served) else 0.0
    if task.kind == "regression":
        gap /= max(1.0, float(np.abs(served).max()))
    if gap > PARITY_TOLERANCE:
        raise RetrainError(
            f"{params.paths.checkpoint} and {params.paths.onnx_model} disagree by {gap:.2e}; "
            "rerun `dvc repro train`"
        )


def _baseline_score(task: Task, result: Attributions, classes: list[str]) -> Any:
    """The baseline row's prediction: a probability, each predicted class's, or a value."""
    if task.kind == "binary":
        return round(float(expit(result.baseline_logit)), 6)
    if task.kind == "regression":
        return round(result.baseline_logit, 6)
    assert result.classes is not None and result.baseline_outputs is not None
    return {
        classes[int(c)]: round(float(np.exp(b)), 6)
        for c, b in sorted(
            zip(result.classes.tolist(), result.baseline_outputs.tolist(), strict=True)
        )
    }


def _by_column(ranked: list[dict[str, Any]]) -> dict[str, Any]:
    return {r["column"]: {k: v for k, v in r.items() if k != "column"} for r in ranked}


def _attributions(
    params: Params, splits: Splits, x_test: np.ndarray, p_test: np.ndarray, task: Task
) -> dict[str, Any]:
    cfg = params.report
    # A seeded sample keeps the stage to seconds; the rows are recorded by id for the curious.
    rng = np.random.default_rng(params.seed)
    n = min(cfg.explain_rows, len(x_test))
    rows = np.sort(rng.choice(len(x_test), size=n, replace=False))
    train_x = splits.matrix("train")[0]
    sources = source_columns(splits.preprocessor)
    result = integrated_gradients(
        load_network(params.paths.checkpoint),
        x_test[rows],
        baseline_row(train_x, cfg.baseline),
        sources,
        n_steps=cfg.ig_steps,
        kind=task.kind,
        target=splits.preprocessor.target_scale(),
    )
    _check_parity(params, task, result, p_test[rows])
    classes = [str(c) for c in task.classes]
    out = {
        "method": "integrated_gradients",
        "target": "logit" if task.kind == "binary" else EXPLAINED[task.kind],
        "baseline": cfg.baseline,
        "baseline_score": _baseline_score(task, result, classes),
        "rows": n,
        "n_steps": cfg.ig_steps,
        "max_abs_delta": round(float(np.abs(result.delta).max()), 8),
        "columns": _by_column(global_attributions(result)),
        # Pairs that share credit: on the training split's design matrix, the card's example.
        "correlated": correlated_pairs(train_x, sources),
    }
    if task.kind == "multiclass":
        per_class = per_class_attributions(result, classes)
        out["per_class"] = {
            name: {"rows": entry["rows"], "columns": _by_column(entry["columns"])}
            for name, entry in per_class.items()
        }
    return out


@dataclass(frozen=True)
class _Scored:
    """The served model's scores on validation and test, and the threshold evaluate chose."""

    splits: Splits
    x_test: np.ndarray
    val: tuple[np.ndarray, np.ndarray]  # (targets, scores)
    test: tuple[np.ndarray, np.ndarray]
    threshold: float | None  # binary only: a multiclass or regression model has none


def _score(params: Params, evaluation: dict[str, Any], task: Task) -> _Scored:
    paths = params.paths
    splits = load_splits(paths)
    (x_val, y_val), (x_test, y_test) = splits.matrix("val"), splits.matrix("test")
    predictor = Predictor(paths.preprocessor, paths.onnx_model)
    # The temperature is fitted on validation: a bag's out-of-fold scores of it (its own are
    # in-sample, retrain.models.val_scores), one model's own.
    p_val = val_scores.for_calibration(params, predictor.predict_matrix(x_val))
    return _Scored(
        splits,
        x_test,
        (y_val, p_val),
        (y_test, predictor.predict_matrix(x_test)),
        float(evaluation["threshold"]) if task.kind == "binary" else None,
    )


def _ranked(attributions: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return sorted(attributions["columns"].items(), key=lambda kv: kv[1]["rank"])


def _write_metrics(params: Params, result: ReportResult, after: list[dict[str, Any]]) -> None:
    """The machine-readable outputs: metrics for DVC and the gate, plot data for DVC plots."""
    paths = params.paths
    write_json(paths.slice_metrics, result.slices)
    write_json(paths.calibration_metrics, result.calibration)
    write_json(paths.attributions, result.attributions)
    write_json(paths.calibration_scaled_plot, after)
    write_json(
        paths.attributions_plot,
        [
            {"column": c, "mean_abs_attribution": a["mean_abs"]}
            for c, a in _ranked(result.attributions)
        ],
    )


def _card(
    params: Params,
    result: ReportResult,
    curves: dict[str, list[dict[str, Any]]],
    runs: dict[str, dict[str, Any]],
) -> str:
    """The model card as Markdown, from this run's outputs (`runs`: train, prepare, evaluate)."""
    paths = params.paths
    return render_markdown(
        CardInputs(
            dataset=params.dataset.model_dump(mode="json"),
            train=runs["train"],
            prepare=runs["prepare"],
            evaluate=runs["evaluate"],
            slices=result.slices,
            calibration={**result.calibration, "reliability": curves},
            attributions=result.attributions,
            top_features=params.report.top_features,
            paths={k: str(v) for k, v in paths.model_dump().items()},
        )
    )


def _write_card(params: Params, card: str) -> None:
    paths = params.paths
    for path, text in (
        (paths.model_card_md, card),
        (paths.model_card_html, render_html(card, f"Model card: {params.dataset.name}")),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _task_calibration(params: Params, task: Task, scored: _Scored) -> dict[str, Any]:
    if task.kind == "multiclass":
        return _multiclass_calibration(params, scored.val, scored.test)
    if task.kind == "regression":
        return _regression_calibration(params, scored.test)
    assert scored.threshold is not None
    return _calibration(params, scored.val, scored.test, scored.threshold)


def _curves(
    task: Task, test: tuple[np.ndarray, np.ndarray], calibration: dict[str, Any], bins: int
) -> dict[str, list[dict[str, Any]]]:
    """The reliability curve before and after scaling: of the positive class (binary), of the
    top class (multiclass); none for regression (its interval's coverage is the check)."""
    y, p = test
    if task.kind == "regression":
        return {"before": [], "after": []}
    if task.kind == "multiclass":
        after = scale_any(p, calibration["temperature"])
        return {
            "before": calibration_points(*top_class(y, p), bins),
            "after": calibration_points(*top_class(y, after), bins),
        }
    return {
        "before": calibration_points(y, p, bins),
        "after": calibration_points(y, scale(p, calibration["temperature"]), bins),
    }


def _summary_line(calibration: dict[str, Any]) -> str:
    if "interval" in calibration:
        iv = calibration["interval"]
        return f"interval coverage {iv['coverage']:.3f} (level {iv['level']})"
    applied = "applied" if calibration["applied"] else "not applied"
    return f"temperature {calibration['temperature']:.3f} ({applied})"


def run(params: Params) -> ReportResult:
    paths = params.paths
    task = task_for(params.dataset)
    # One thread: attributions are then the same bytes on every run and machine.
    torch.set_num_threads(1)
    runs = {
        "train": _read_json(paths.model_card),
        "evaluate": _read_json(paths.metrics),
        "prepare": _read_json(paths.prepare_summary),
    }
    scored = _score(params, runs["evaluate"], task)
    (y_test, p_test), threshold = scored.test, scored.threshold
    slices = slice_metrics(
        scored.splits.frames["test"],
        y_test,
        p_test,
        params.report.slices,
        threshold=threshold if threshold is not None else 0.0,  # binary only
        rule=SliceRule.from_params(params),
        task=task,
    )
    calibration = _task_calibration(params, task, scored)
    if params.train.bag_folds:  # a bag's validation scores are its members' out-of-fold ones
        calibration["fitted_on"] = "val, out of fold (train.bag_folds)"
    attributions = _attributions(params, scored.splits, scored.x_test, p_test, task)
    result = ReportResult(slices, calibration, attributions, card="")

    curves = _curves(task, scored.test, calibration, params.evaluate.calibration_bins)
    _write_metrics(params, result, curves["after"])
    card = _card(params, result, curves, runs)
    _write_card(params, card)
    print(
        f"report: top attribution {_ranked(attributions)[0][0]!r}; {_summary_line(calibration)}; "
        f"card {paths.model_card_md}"
    )
    return replace(result, card=card)


def main() -> None:
    stage_main("report", run)


if __name__ == "__main__":
    main()
