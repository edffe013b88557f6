"""Stage `report`: explanations, slice metrics, calibration and the model card of the model.

Reads what train and evaluate wrote (the checkpoint for attributions, the ONNX model for
scores, model_card.json, metrics/evaluate.json) and writes machine-readable metrics, two DVC
plots and the model card as Markdown and HTML.
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
    baseline_row,
    global_attributions,
    integrated_gradients,
    load_network,
    source_columns,
)
from retrain.analysis.calibration import fit_temperature, no_scaling, scale
from retrain.analysis.card import CardInputs, render_html, render_markdown
from retrain.analysis.correlation import correlated_pairs
from retrain.analysis.slices import SliceRule, slice_metrics
from retrain.config import Params
from retrain.data.splits import Splits, load_splits
from retrain.errors import RetrainError
from retrain.files import write_json
from retrain.models.metrics import (
    calibration_points,
    classification_metrics,
    expected_calibration_error,
)
from retrain.models.predictor import Predictor
from retrain.stages._common import stage_main

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


def _attributions(
    params: Params, splits: Splits, x_test: np.ndarray, p_test: np.ndarray
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
    )
    served = p_test[rows]
    explained = expit(result.logits)
    gap = float(np.abs(explained - served).max())
    if gap > PARITY_TOLERANCE:
        raise RetrainError(
            f"{params.paths.checkpoint} and {params.paths.onnx_model} disagree by {gap:.2e}; "
            "rerun `dvc repro train`"
        )
    ranked = global_attributions(result)
    return {
        "method": "integrated_gradients",
        "target": "logit",
        "baseline": cfg.baseline,
        "baseline_score": round(float(expit(result.baseline_logit)), 6),
        "rows": n,
        "n_steps": cfg.ig_steps,
        "max_abs_delta": round(float(np.abs(result.delta).max()), 8),
        "columns": {r["column"]: {k: v for k, v in r.items() if k != "column"} for r in ranked},
        # Pairs that share credit: on the training split's design matrix, the card's example.
        "correlated": correlated_pairs(train_x, sources),
    }


@dataclass(frozen=True)
class _Scored:
    """The served model's scores on validation and test, and the threshold evaluate chose."""

    splits: Splits
    x_test: np.ndarray
    val: tuple[np.ndarray, np.ndarray]  # (targets, scores)
    test: tuple[np.ndarray, np.ndarray]
    threshold: float


def _score(params: Params, evaluation: dict[str, Any]) -> _Scored:
    paths = params.paths
    splits = load_splits(paths)
    (x_val, y_val), (x_test, y_test) = splits.matrix("val"), splits.matrix("test")
    predictor = Predictor(paths.preprocessor, paths.onnx_model)
    return _Scored(
        splits,
        x_test,
        (y_val, predictor.predict_matrix(x_val)),
        (y_test, predictor.predict_matrix(x_test)),
        float(evaluation["threshold"]),
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


def run(params: Params) -> ReportResult:
    paths = params.paths
    # One thread: attributions are then the same bytes on every run and machine.
    torch.set_num_threads(1)
    runs = {
        "train": _read_json(paths.model_card),
        "evaluate": _read_json(paths.metrics),
        "prepare": _read_json(paths.prepare_summary),
    }
    scored = _score(params, runs["evaluate"])
    (y_test, p_test), threshold = scored.test, scored.threshold
    slices = slice_metrics(
        scored.splits.frames["test"],
        y_test,
        p_test,
        params.report.slices,
        threshold=threshold,
        rule=SliceRule.from_params(params),
    )
    calibration = _calibration(params, scored.val, scored.test, threshold)
    attributions = _attributions(params, scored.splits, scored.x_test, p_test)
    result = ReportResult(slices, calibration, attributions, card="")

    bins = params.evaluate.calibration_bins
    curves = {
        "before": calibration_points(y_test, p_test, bins),
        "after": calibration_points(y_test, scale(p_test, calibration["temperature"]), bins),
    }
    _write_metrics(params, result, curves["after"])
    card = _card(params, result, curves, runs)
    _write_card(params, card)
    print(
        f"report: top attribution {_ranked(attributions)[0][0]!r}; temperature "
        f"{calibration['temperature']:.3f} "
        f"({'applied' if calibration['applied'] else 'not applied'}); "
        f"card {paths.model_card_md}"
    )
    return replace(result, card=card)


def main() -> None:
    stage_main("report", run)


if __name__ == "__main__":
    main()
