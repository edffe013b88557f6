"""The champion/challenger gate: plain functions over labels and scores (tested with crafted
scores). `retrain.registry.champion` gathers the scores; the retrain flow acts on the result.

A challenger is promoted only if, on the same holdout as the champion:
- it beats the champion on `registry.gate.metric` by at least `margin`;
- on no slice of the columns in `slices` that is not small (`retrain.analysis.slices`: the
  report's slices, names and size rule) is it worse than the champion by more than
  `slice_tolerance`;
- its expected calibration error is at most `max_ece`.
With no champion, the challenger is the first model and becomes prod.
Every metric is `retrain.models.metrics`' (the report's numbers for the same rows).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from retrain.analysis.slices import Slice, SliceRule, define
from retrain.config import GateParams
from retrain.markdown import table
from retrain.models.metrics import HIGHER_IS_BETTER, expected_calibration_error, gain, score

Decision = Literal["promoted", "rejected", "first", "unchanged"]


@dataclass(frozen=True)
class SliceCheck:
    name: str  # column=value, as in the report's metrics/slices.json
    column: str
    value: str
    rows: int
    positives: int
    small: bool
    champion: float | None
    challenger: float | None
    gain: float | None
    status: Literal["ok", "regressed", "skipped", "reported"]


@dataclass(frozen=True)
class GateResult:
    """What the gate decided, and every number it decided on."""

    decision: Decision
    promote: bool
    reasons: list[str]
    metric: str
    margin: float
    rows: int
    challenger: dict[str, float | None]
    champion: dict[str, float | None] | None = None
    gain: float | None = None
    slices: list[SliceCheck] = field(default_factory=list)
    holdout: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def slice_checks(
    slices: list[Slice],
    y: np.ndarray,
    scores: tuple[np.ndarray, np.ndarray | None],
    cfg: GateParams,
) -> list[SliceCheck]:
    """One check per slice (`define`d on the rows of `y`) of the challenger's and the
    champion's `scores`; small slices and those where the metric is undefined are skipped."""
    challenger, champion = scores
    checks = []
    for s in slices:
        ys = y[s.rows]
        ch = score(cfg.metric, ys, challenger[s.rows])
        cp = score(cfg.metric, ys, champion[s.rows]) if champion is not None else None
        g = gain(cfg.metric, ch, cp) if ch is not None and cp is not None else None
        status: Literal["ok", "regressed", "skipped", "reported"]
        if champion is None:
            status = "reported"
        elif g is None or s.small:
            status = "skipped"
        elif g < -cfg.slice_tolerance:
            status = "regressed"
        else:
            status = "ok"
        checks.append(
            SliceCheck(s.name, s.column, s.value, s.n, s.positives, s.small, cp, ch, g, status)
        )
    return checks


def _summary(metric: str, y: np.ndarray, p: np.ndarray, bins: int) -> dict[str, float | None]:
    return {metric: score(metric, y, p), "ece": expected_calibration_error(y, p, bins)}


def decide(
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray | None,
    slices: pd.DataFrame,
    cfg: GateParams,
    *,
    rule: SliceRule,
    calibration_bins: int = 10,
    holdout: dict[str, Any] | None = None,
) -> GateResult:
    """Promote the challenger or not.

    Args:
        y: 0/1 labels of the holdout.
        challenger: the new model's scores on those rows.
        champion: the production model's scores on the same rows; None when nothing is in
            production, in which case the challenger becomes the first model.
        slices: the slice columns of the same rows (`cfg.slices`), index-aligned with `y`.
        cfg: registry.gate of params.yaml.
        rule: which slices are too small to judge (`SliceRule.from_params`).
        calibration_bins: bins of the calibration error (evaluate.calibration_bins).
        holdout: a description of the rows (how many, which were excluded), kept as is.
    """
    y = np.asarray(y).astype(int)
    ours = _summary(cfg.metric, y, challenger, calibration_bins)
    common: dict[str, Any] = {
        "metric": cfg.metric,
        "margin": cfg.margin,
        "rows": len(y),
        "challenger": ours,
        "slices": slice_checks(
            define(slices.reset_index(drop=True), y, list(slices.columns), rule),
            y,
            (challenger, champion),
            cfg,
        ),
        "holdout": holdout or {},
    }
    ece = ours["ece"]
    calibrated = ece is not None and ece <= cfg.max_ece
    if champion is None:
        reasons = ["no model in production: the first model becomes prod"]
        if not calibrated:
            reasons.append(f"note: ECE {ece:.4f} above {cfg.max_ece}, promoted as the only model")
        return GateResult("first", True, reasons, **common)
    theirs = _summary(cfg.metric, y, champion, calibration_bins)
    ch, cp = ours[cfg.metric], theirs[cfg.metric]
    if ch is None or cp is None:
        return GateResult(
            "rejected",
            False,
            [f"{cfg.metric} is undefined on a holdout of {len(y)} rows with one class"],
            champion=theirs,
            **common,
        )
    g = gain(cfg.metric, ch, cp)
    reasons, ok = [], True
    if g >= cfg.margin:
        reasons.append(f"{cfg.metric} better by {g:+.4f} (margin {cfg.margin})")
    else:
        ok = False
        reasons.append(f"{cfg.metric} changes by {g:+.4f}, short of the margin {cfg.margin}")
    regressed = [s for s in common["slices"] if s.status == "regressed"]
    for s in regressed:
        reasons.append(
            f"slice {s.name} ({s.rows} rows) regresses by {-s.gain:.4f} "
            f"(tolerance {cfg.slice_tolerance})"
        )
    ok = ok and not regressed
    # The served scores (uncalibrated): what predict hands out is what is judged.
    shown = "undefined" if ece is None else f"{ece:.4f}"
    if calibrated:
        reasons.append(f"ECE {shown} within {cfg.max_ece} (served scores, uncalibrated)")
    else:
        ok = False
        reasons.append(f"ECE {shown} above the bound {cfg.max_ece} (served scores, uncalibrated)")
    return GateResult(
        "promoted" if ok else "rejected", ok, reasons, champion=theirs, gain=g, **common
    )


def unchanged(metric: str, margin: float, version: str) -> GateResult:
    """The challenger is byte for byte the champion: nothing to decide, nothing to register."""
    return GateResult(
        "unchanged",
        False,
        [f"the trained model is identical to the one in production (`{version}`)"],
        metric,
        margin,
        0,
        {},
    )


def markdown(
    result: GateResult, champion: str | None, challenger: str, max_ece: float | None = None
) -> str:
    """The gate's decision and numbers, for the Prefect UI (4 digits; which way is better).

    Both models are scored on the same holdout with the scores predict serves (the ONNX
    model's, uncalibrated: temperature scaling in the model card is reported, not served).
    """
    verdict = {
        "promoted": "PROMOTED",
        "first": "PROMOTED (first model)",
        "rejected": "not promoted",
        "unchanged": "unchanged",
    }[result.decision]
    lines = [f"## Gate: {challenger} {verdict}", ""]
    lines += [f"- {r}" for r in result.reasons]
    if result.holdout:
        lines.append("- holdout: " + ", ".join(f"{k} {v}" for k, v in result.holdout.items()))
    if result.decision == "unchanged":
        return "\n".join(lines)
    lines.append("- scores: served (ONNX, uncalibrated), both models on the same holdout rows")
    ch, cp = result.challenger, result.champion or {}
    better = "higher" if HIGHER_IS_BETTER[result.metric] else "lower"
    rule = {
        result.metric: f"{better} is better; ours must beat production by >= {result.margin}",
        "ece": "lower is better" + (f"; ours must be <= {max_ece}" if max_ece is not None else ""),
    }
    rows = [
        [key, _fmt(ch.get(key)), _fmt(cp.get(key)), rule[key]] for key in (result.metric, "ece")
    ]
    lines += [
        "",
        *table(["", challenger, f"production ({champion or 'none'})", "gate"], rows, "lrrl"),
    ]
    if result.slices:
        rows = [
            [
                s.name,
                str(s.rows),
                str(s.positives),
                _fmt(s.challenger),
                _fmt(s.champion),
                _fmt(s.gain),
                s.status,
            ]
            for s in result.slices
        ]
        header = ["slice", "rows", "positives", "ours", "production", "gain", "status"]
        lines += ["", *table(header, rows, "lrrrrrl")]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
