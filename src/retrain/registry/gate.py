"""The champion/challenger gate: plain functions over labels and scores (tested with crafted
scores). `retrain.registry.champion` gathers the scores; the retrain flow acts on the result.

A challenger is promoted only if, on the same holdout as the champion:
- the holdout holds enough evidence: at least `min_rows` rows and `min_class_rows` of each
  class (else the decision is `insufficient`: too little evidence, never a coin flip);
- it beats the champion on `registry.gate.metric` by at least `margin`, and the paired
  bootstrap interval of that difference at `confidence` (`retrain.registry.evidence`) has its
  lower bound above `-tolerance`: the gain is not noise;
- on no slice of the columns in `slices` that is not small (`retrain.analysis.slices`: the
  report's slices, names and size rule) is it worse than the champion by more than
  `slice_tolerance`;
- its expected calibration error is at most `max_ece`.
With no champion, the challenger is the first model and becomes prod.
Every metric is `retrain.models.metrics`' (the report's numbers for the same rows). The rules
come from params.yaml only (a run's overrides cannot touch them: config.GATE_KEYS), and every
result carries the rules it applied (`GateResult.rules`, in the run record).
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
from retrain.registry.evidence import Interval, paired_interval

# "insufficient" (too little evidence) is newer than the others; old records hold only those.
Decision = Literal["promoted", "rejected", "first", "unchanged", "insufficient"]


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
    # The paired bootstrap interval of `gain` ([low, high]) at `confidence`; None when not
    # computed (no champion, an undefined metric). Absent from records older than it.
    interval: list[float] | None = None
    confidence: float | None = None
    positives: int | None = None  # positive rows of the holdout (`rows` is its n)
    rules: dict[str, Any] = field(default_factory=dict)  # the rules applied (rules())

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


def rules(cfg: GateParams, rule: SliceRule, calibration_bins: int, seed: int) -> dict[str, Any]:
    """Every rule the gate applies, as the run record shows them."""
    return {
        **cfg.model_dump(),
        "slice_min_rows": rule.min_rows,
        "slice_min_class_rows": rule.min_class_rows,
        "calibration_bins": calibration_bins,
        "seed": seed,
        "promote_if": (
            f"n >= {cfg.min_rows} with >= {cfg.min_class_rows} of each class; "
            f"gain >= {cfg.margin} and the {_pct(cfg.confidence)} interval's lower bound > "
            f"-{cfg.tolerance}; no slice worse by > {cfg.slice_tolerance}; "
            f"ECE <= {cfg.max_ece}"
        ),
    }


def _pct(confidence: float) -> str:
    return f"{confidence * 100:g}%"


def too_little_evidence(y: np.ndarray, cfg: GateParams) -> str | None:
    """The reason the holdout is too small to judge on, or None when it is enough."""
    n, positives = len(y), int(y.sum())
    if n >= cfg.min_rows and min(positives, n - positives) >= cfg.min_class_rows:
        return None
    return (
        f"too little evidence, n = {n} ({positives} positives, {n - positives} negatives; "
        f"the gate judges from {cfg.min_rows} rows and {cfg.min_class_rows} of each class: "
        "registry.gate.min_rows, min_class_rows)"
    )


def _metric_check(g: float, iv: Interval, n: int, cfg: GateParams) -> tuple[bool, str]:
    """The metric rule: gain >= margin AND the interval's lower bound > -tolerance."""
    shown = f"{_pct(iv.confidence)} CI [{iv.low:+.4f}, {iv.high:+.4f}], n = {n}"
    moved = f"{cfg.metric} {'better' if g > 0 else 'changes'} by {g:+.4f}"
    if g < cfg.margin:
        return False, f"{moved}, short of the margin {cfg.margin} ({shown})"
    if not iv.low > -cfg.tolerance:  # a NaN bound (no resample had both classes) fails too
        return False, (
            f"{moved} but too uncertain: {shown}, lower bound not above -{cfg.tolerance} "
            "(tolerance)"
        )
    return True, f"{moved} ({shown}; margin {cfg.margin}, lower bound above -{cfg.tolerance})"


def _ece_check(ece: float | None, cfg: GateParams) -> tuple[bool, str]:
    # The served scores (uncalibrated): what predict hands out is what is judged.
    shown = "undefined" if ece is None else f"{ece:.4f}"
    if ece is not None and ece <= cfg.max_ece:
        return True, f"ECE {shown} within {cfg.max_ece} (served scores, uncalibrated)"
    return False, f"ECE {shown} above the bound {cfg.max_ece} (served scores, uncalibrated)"


def _slice_reasons(checks: list[SliceCheck], cfg: GateParams) -> list[str]:
    return [
        f"slice {s.name} ({s.rows} rows) regresses by {-(s.gain or 0.0):.4f} "
        f"(tolerance {cfg.slice_tolerance})"
        for s in checks
        if s.status == "regressed"
    ]


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
    seed: int = 0,
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
        seed: seeds the bootstrap (params.yaml's seed: a replay gets the same interval).
    """
    y = np.asarray(y).astype(int)
    ours = _summary(cfg.metric, y, challenger, calibration_bins)
    checks = slice_checks(
        define(slices.reset_index(drop=True), y, list(slices.columns), rule),
        y,
        (challenger, champion),
        cfg,
    )
    common: dict[str, Any] = {
        "metric": cfg.metric,
        "margin": cfg.margin,
        "rows": len(y),
        "challenger": ours,
        "slices": checks,
        "holdout": holdout or {},
        "positives": int(y.sum()),
        "rules": rules(cfg, rule, calibration_bins, seed),
    }
    if champion is None:
        reasons = ["no model in production: the first model becomes prod"]
        if not _ece_check(ours["ece"], cfg)[0]:
            reasons.append(
                f"note: ECE {ours['ece']:.4f} above {cfg.max_ece}, promoted as the only model"
            )
        return GateResult("first", True, reasons, **common)
    return _challenge(y, challenger, champion, cfg, common, seed)


def _challenge(
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    cfg: GateParams,
    common: dict[str, Any],
    seed: int,
) -> GateResult:
    """The champion/challenger verdict, once `decide` has the shared numbers."""
    theirs = _summary(cfg.metric, y, champion, common["rules"]["calibration_bins"])
    ch, cp = common["challenger"][cfg.metric], theirs[cfg.metric]
    short = too_little_evidence(y, cfg)
    if ch is None or cp is None:
        reason = f"{cfg.metric} is undefined on a holdout of {len(y)} rows with one class"
        decision: Decision = "insufficient" if short else "rejected"
        return GateResult(decision, False, [short or reason], champion=theirs, **common)
    g = gain(cfg.metric, ch, cp)
    iv = paired_interval(
        cfg.metric,
        y,
        challenger,
        champion,
        confidence=cfg.confidence,
        resamples=cfg.resamples,
        seed=seed,
    )
    metric_ok, metric_reason = _metric_check(g, iv, len(y), cfg)
    regressed = _slice_reasons(common["slices"], cfg)
    ece_ok, ece_reason = _ece_check(common["challenger"]["ece"], cfg)
    ok = metric_ok and not regressed and ece_ok and short is None
    reasons = ([short] if short else []) + [metric_reason, *regressed, ece_reason]
    decision = "insufficient" if short else ("promoted" if ok else "rejected")
    bounds = [iv.low, iv.high] if iv.resamples else None  # none had both classes
    return GateResult(
        decision,
        ok,
        reasons,
        champion=theirs,
        gain=g,
        interval=bounds,
        confidence=iv.confidence,
        **common,
    )


def unchanged(
    metric: str, margin: float, version: str, rules: dict[str, Any] | None = None
) -> GateResult:
    """The challenger is byte for byte the champion: nothing to decide, nothing to register."""
    return GateResult(
        "unchanged",
        False,
        [f"the trained model is identical to the one in production (`{version}`)"],
        metric,
        margin,
        0,
        {},
        rules=rules or {},
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
        "insufficient": "not promoted (too little evidence)",
    }[result.decision]
    lines = [f"## Gate: {challenger} {verdict}", ""]
    lines += [f"- {r}" for r in result.reasons]
    if result.decision != "unchanged":
        lines.append("- evidence: " + evidence_line(result))
    if result.holdout:
        lines.append("- holdout: " + ", ".join(f"{k} {v}" for k, v in result.holdout.items()))
    if result.decision == "unchanged":
        return "\n".join(lines)
    lines.append("- scores: served (ONNX, uncalibrated), both models on the same holdout rows")
    # The models are named here, not in the table's headers: at a 1400 px window the table's
    # every column must show in the Prefect UI (issue 28).
    lines.append(f"- ours: {challenger}; production (prod): {champion or 'none'}")
    ch, cp = result.challenger, result.champion or {}
    tolerance = result.rules.get("tolerance", 0.0)
    rule = {
        result.metric: f"ours >= prod + {result.margin}, CI low > -{tolerance}",
        "ece": f"ours <= {max_ece}" if max_ece is not None else "",
    }
    rows = [
        [key, "higher" if HIGHER_IS_BETTER[key] else "lower"]
        + [_fmt(ch.get(key)), _fmt(cp.get(key)), rule[key]]
        for key in (result.metric, "ece")
    ]
    lines += ["", *table(["", "better", "ours", "prod", "gate"], rows, "llrrl")]
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


def evidence_line(result: GateResult) -> str:
    """The paired difference, its interval and the holdout's size, in one line."""
    n = f"n = {result.rows}" + (
        f" ({result.positives} positives)" if result.positives is not None else ""
    )
    if result.interval is None or result.gain is None or result.confidence is None:
        return f"{n}; no paired interval (no champion, or the metric is undefined)"
    low, high = result.interval
    resamples = result.rules.get("resamples", "?")
    return (
        f"{result.metric} challenger - champion {result.gain:+.4f}, "
        f"{_pct(result.confidence)} CI [{low:+.4f}, {high:+.4f}] "
        f"(paired bootstrap over holdout rows, {resamples} resamples), {n}"
    )


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
