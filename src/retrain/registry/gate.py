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

Per task (`retrain.task`; binary when none is given, with its decisions and numbers as they
always were): the metric's direction is the task's; a multiclass prediction is a (rows x
classes) matrix, resampled by rows whole, `min_class_rows` holds for every pinned class and
the ECE is the top class's (`retrain.analysis.calibration.top_class_ece`); a regression holdout
needs `min_rows` only, has no ECE, and instead the test coverage of its conformal interval
(prediction +- half_width, paths.intervals) may miss the interval's level by at most
`coverage_tolerance`. Multiclass and regression metrics are `retrain.registry.evidence.point`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from retrain.analysis.calibration import ConformalInterval, coverage, top_class_ece
from retrain.analysis.slices import Slice, SliceRule, define
from retrain.config import GateParams
from retrain.markdown import table
from retrain.models.metrics import expected_calibration_error, score
from retrain.registry.evidence import Interval, paired_interval, point
from retrain.task import HIGHER_IS_BETTER, BinaryTask, Task

# "insufficient" (too little evidence) is newer than the others; old records hold only those.
Decision = Literal["promoted", "rejected", "first", "unchanged", "insufficient"]


@dataclass(frozen=True)
class SliceCheck:
    name: str  # column=value, as in the report's metrics/slices.json
    column: str
    value: str
    rows: int
    positives: int | None  # binary only (None: multiclass, regression)
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
    # Newer than binary records, left out of to_dict when None (a binary record's bytes stay):
    task: str | None = None  # multiclass, regression
    class_rows: dict[str, int] | None = None  # multiclass: holdout rows of each class
    interval_coverage: dict[str, Any] | None = None  # regression: the interval on the holdout

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("task", "class_rows", "interval_coverage"):
            if out[key] is None:
                del out[key]
        return out


def _binary(task: Task | None) -> Task:
    # The gate's callers before tasks existed pass none: theirs is a binary table.
    return task if task is not None else BinaryTask([1])


def _score(task: Task, metric: str, y: np.ndarray, p: np.ndarray) -> float | None:
    if task.kind == "binary":
        return score(metric, y, p)
    return point(metric, y, p)


def _targets(task: Task, y: np.ndarray) -> np.ndarray:
    return (
        np.asarray(y, dtype=np.float64) if task.kind == "regression" else np.asarray(y).astype(int)
    )


def slice_checks(
    slices: list[Slice],
    y: np.ndarray,
    scores: tuple[np.ndarray, np.ndarray | None],
    cfg: GateParams,
    task: Task | None = None,
) -> list[SliceCheck]:
    """One check per slice (`define`d on the rows of `y`) of the challenger's and the
    champion's `scores`; small slices and those where the metric is undefined are skipped."""
    challenger, champion = scores
    task = _binary(task)
    checks = []
    for s in slices:
        ys = y[s.rows]
        ch = _score(task, cfg.metric, ys, challenger[s.rows])
        cp = _score(task, cfg.metric, ys, champion[s.rows]) if champion is not None else None
        g = task.gain(cfg.metric, ch, cp) if ch is not None and cp is not None else None
        status: Literal["ok", "regressed", "skipped", "reported"]
        if champion is None:
            status = "reported"
        elif g is None or s.small:
            status = "skipped"
        elif g < -cfg.slice_tolerance:
            status = "regressed"
        else:
            status = "ok"
        positives = s.positives if task.kind == "binary" else None
        checks.append(
            SliceCheck(s.name, s.column, s.value, s.n, positives, s.small, cp, ch, g, status)
        )
    return checks


def _summary(
    task: Task,
    metric: str,
    y: np.ndarray,
    p: np.ndarray,
    bins: int,
    interval: ConformalInterval | None = None,
) -> dict[str, float | None]:
    """The gate's metric and the calibration measure of the task (ECE, or the coverage)."""
    if task.kind == "binary":
        return {metric: score(metric, y, p), "ece": expected_calibration_error(y, p, bins)}
    if task.kind == "multiclass":
        ece = top_class_ece(y, p, bins) if len(y) else None
        return {metric: point(metric, y, p), "ece": ece}
    covered = coverage(y, p, interval.half_width) if interval is not None else None
    return {metric: point(metric, y, p), "coverage": covered}


def rules(
    cfg: GateParams,
    rule: SliceRule,
    calibration_bins: int,
    seed: int,
    task: Task | None = None,
) -> dict[str, Any]:
    """Every rule the gate applies, as the run record shows them."""
    kind = _binary(task).kind
    judged = f"gain >= {cfg.margin} and the {_pct(cfg.confidence)} interval's lower bound > "
    judged += f"-{cfg.tolerance}; no slice worse by > {cfg.slice_tolerance}; "
    promote_if = {
        "binary": f"n >= {cfg.min_rows} with >= {cfg.min_class_rows} of each class; "
        + judged
        + f"ECE <= {cfg.max_ece}",
        "multiclass": f"n >= {cfg.min_rows} with >= {cfg.min_class_rows} of each class; "
        + judged
        + f"top-class ECE <= {cfg.max_ece}",
        "regression": f"n >= {cfg.min_rows}; "
        + judged
        + f"interval coverage within {cfg.coverage_tolerance} of its level",
    }[kind]
    out = {
        **cfg.model_dump(),
        "slice_min_rows": rule.min_rows,
        "slice_min_class_rows": rule.min_class_rows,
        "calibration_bins": calibration_bins,
        "seed": seed,
        "promote_if": promote_if,
    }
    return out if kind == "binary" else {**out, "task": kind}


def _pct(confidence: float) -> str:
    return f"{confidence * 100:g}%"


def too_little_evidence(y: np.ndarray, cfg: GateParams, task: Task | None = None) -> str | None:
    """The reason the holdout is too small to judge on, or None when it is enough: too few
    rows, or (classification) too few of a class."""
    task = _binary(task)
    if task.kind == "multiclass":
        return _too_few_per_class(y, cfg, task)
    if task.kind == "regression":
        if len(y) >= cfg.min_rows:
            return None
        return (
            f"too little evidence, n = {len(y)} (the gate judges from {cfg.min_rows} rows: "
            "registry.gate.min_rows)"
        )
    n, positives = len(y), int(y.sum())
    if n >= cfg.min_rows and min(positives, n - positives) >= cfg.min_class_rows:
        return None
    return (
        f"too little evidence, n = {n} ({positives} positives, {n - positives} negatives; "
        f"the gate judges from {cfg.min_rows} rows and {cfg.min_class_rows} of each class: "
        "registry.gate.min_rows, min_class_rows)"
    )


def _too_few_per_class(y: np.ndarray, cfg: GateParams, task: Task) -> str | None:
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=len(task.classes))
    if len(y) >= cfg.min_rows and counts.min() >= cfg.min_class_rows:
        return None
    each = ", ".join(f"{c} {int(k)}" for c, k in zip(task.classes, counts, strict=True))
    return (
        f"too little evidence, n = {len(y)} ({each}; the gate judges from {cfg.min_rows} rows "
        f"and {cfg.min_class_rows} of each class: registry.gate.min_rows, min_class_rows)"
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


def _calibration_check(
    task: Task, summary: dict[str, float | None], cfg: GateParams, level: float | None
) -> tuple[bool, str]:
    """The task's calibration rule: ECE (binary), top-class ECE (multiclass), or the interval's
    coverage (regression: within coverage_tolerance of its level)."""
    if task.kind == "binary":
        return _ece_check(summary["ece"], cfg)
    # Reasons start with what failed and say "above the bound" when it did: the run's state
    # names the failed rule from them (retrain.orchestration.runview.gate_outcome).
    if task.kind == "multiclass":
        ok, reason = _ece_check(summary["ece"], cfg)
        return ok, reason.replace("ECE", "ECE of the top class", 1)
    covered = summary["coverage"]
    if covered is None or level is None:
        return False, (
            "coverage unknown (no interval file, paths.intervals): treated as above the bound "
            "registry.gate.coverage_tolerance"
        )
    miss = round(abs(covered - level), 6)  # rounded: 0.88 is within 0.9 +- 0.02
    shown = f"coverage {covered:.4f} of the {_pct(level)} interval on the holdout"
    if miss <= cfg.coverage_tolerance:
        return True, (
            f"{shown}, within {cfg.coverage_tolerance} of its level "
            "(registry.gate.coverage_tolerance)"
        )
    return False, (
        f"{shown} misses its level by {miss:.4f}, above the bound "
        f"registry.gate.coverage_tolerance {cfg.coverage_tolerance}"
    )


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
    task: Task | None = None,
    interval: ConformalInterval | None = None,
) -> GateResult:
    """Promote the challenger or not.

    Args:
        y: the holdout's targets: 0/1 labels (binary), class indices (multiclass), values
            (regression).
        challenger: the new model's prediction on those rows (`retrain.task`'s shape).
        champion: the production model's prediction on the same rows; None when nothing is in
            production, in which case the challenger becomes the first model.
        slices: the slice columns of the same rows (`cfg.slices`), index-aligned with `y`.
        cfg: registry.gate of params.yaml.
        rule: which slices are too small to judge (`SliceRule.from_params`).
        calibration_bins: bins of the calibration error (evaluate.calibration_bins).
        holdout: a description of the rows (how many, which were excluded), kept as is.
        seed: seeds the bootstrap (params.yaml's seed: a replay gets the same interval).
        task: the table's task (`retrain.task.task_for`); None: binary.
        interval: regression: the challenger's conformal interval (paths.intervals), whose
            coverage on the holdout is judged; None there fails that rule.
    """
    task = _binary(task)
    y = _targets(task, y)
    ours = _summary(task, cfg.metric, y, challenger, calibration_bins, interval)
    checks = slice_checks(
        define(slices.reset_index(drop=True), y, list(slices.columns), rule, task),
        y,
        (challenger, champion),
        cfg,
        task,
    )
    common = _common(task, y, cfg, (ours, checks), (holdout, interval))
    common["rules"] = rules(cfg, rule, calibration_bins, seed, task)
    if champion is None:
        return _first(task, common, cfg, interval)
    return _challenge(y, challenger, champion, cfg, common, seed, task, interval)


def _common(
    task: Task,
    y: np.ndarray,
    cfg: GateParams,
    ours: tuple[dict[str, float | None], list[SliceCheck]],
    about: tuple[dict[str, Any] | None, ConformalInterval | None],
) -> dict[str, Any]:
    """What every decision of `decide` carries: the challenger's numbers and the holdout's."""
    (summary, checks), (holdout, interval) = ours, about
    common: dict[str, Any] = {
        "metric": cfg.metric,
        "margin": cfg.margin,
        "rows": len(y),
        "challenger": summary,
        "slices": checks,
        "holdout": holdout or {},
        "positives": int(y.sum()) if task.kind == "binary" else None,
    }
    if task.kind != "binary":
        common["task"] = task.kind
    if task.kind == "multiclass":
        counts = np.bincount(y, minlength=len(task.classes))
        common["class_rows"] = {str(c): int(k) for c, k in zip(task.classes, counts, strict=True)}
    if task.kind == "regression" and interval is not None:
        common["interval_coverage"] = {
            "level": interval.level,
            "half_width": interval.half_width,
            "n_val": interval.n_val,
            "coverage": summary["coverage"],
            "tolerance": cfg.coverage_tolerance,
        }
    return common


def _first(
    task: Task, common: dict[str, Any], cfg: GateParams, interval: ConformalInterval | None
) -> GateResult:
    """No champion: the challenger becomes prod; a failed calibration rule is a note."""
    reasons = ["no model in production: the first model becomes prod"]
    ours = common["challenger"]
    level = interval.level if interval is not None else None
    ok, why = _calibration_check(task, ours, cfg, level)
    if task.kind == "binary" and not ok:
        reasons.append(
            f"note: ECE {ours['ece']:.4f} above {cfg.max_ece}, promoted as the only model"
        )
    elif not ok:
        reasons.append(f"note: {why}; promoted as the only model")
    return GateResult("first", True, reasons, **common)


def _challenge(
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    cfg: GateParams,
    common: dict[str, Any],
    seed: int,
    task: Task,
    interval: ConformalInterval | None,
) -> GateResult:
    """The champion/challenger verdict, once `decide` has the shared numbers."""
    bins = common["rules"]["calibration_bins"]
    # The champion's own interval is not judged: only the challenger's is about to be served.
    theirs = _summary(task, cfg.metric, y, champion, bins, interval)
    if task.kind == "regression":
        theirs["coverage"] = None
    ch, cp = common["challenger"][cfg.metric], theirs[cfg.metric]
    short = too_little_evidence(y, cfg, task)
    if ch is None or cp is None:
        reason = f"{cfg.metric} is undefined on a holdout of {len(y)} rows " + {
            "binary": "with one class",
            "multiclass": "missing a class",
            "regression": "of one value",
        }.get(task.kind, "")
        decision: Decision = "insufficient" if short else "rejected"
        return GateResult(decision, False, [short or reason], champion=theirs, **common)
    g = task.gain(cfg.metric, ch, cp)
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
    level = interval.level if interval is not None else None
    ece_ok, ece_reason = _calibration_check(task, common["challenger"], cfg, level)
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
        "coverage": _coverage_rule(result),
    }
    # Regression has no ECE: its interval's coverage is judged instead.
    calibration = "coverage" if result.task == "regression" else "ece"
    label = {"ece": "ece (top class)"} if result.task == "multiclass" else {}
    rows = [
        [
            label.get(key, key),
            "closer to level"
            if key == "coverage"
            else "higher"
            if HIGHER_IS_BETTER[key]
            else "lower",
        ]
        + [_fmt(ch.get(key)), _fmt(cp.get(key)), rule[key]]
        for key in (result.metric, calibration)
    ]
    lines += ["", *table(["", "better", "ours", "prod", "gate"], rows, "llrrl")]
    if result.slices:
        lines += ["", *_slice_table(result)]
    return "\n".join(lines)


def _coverage_rule(result: GateResult) -> str:
    about = result.interval_coverage
    if about is None:
        return "no interval file"
    # Short: the gate table must fit a 1400 px window (issue 28).
    return f"ours within {about['tolerance']} of {about['level']} (± {about['half_width']:.4g})"


def _slice_table(result: GateResult) -> list[str]:
    """The slices' rows; the positives column only where there is a positive class."""
    binary = result.task is None
    header = ["slice", "rows", *(["positives"] if binary else [])]
    header += ["ours", "production", "gain", "status"]
    rows = [
        [
            s.name,
            str(s.rows),
            *([str(s.positives)] if binary else []),
            _fmt(s.challenger),
            _fmt(s.champion),
            _fmt(s.gain),
            s.status,
        ]
        for s in result.slices
    ]
    return table(header, rows, "lr" + ("r" if binary else "") + "rrrl")


def evidence_line(result: GateResult) -> str:
    """The paired difference, its interval and the holdout's size, in one line."""
    n = f"n = {result.rows}" + (
        f" ({result.positives} positives)" if result.positives is not None else ""
    )
    parts = result.holdout
    if "pinned_rows" in parts:  # where the rows came from (retrain.registry.champion)
        version = str(parts.get("pinned_version") or "unpinned")[:12]
        n += (
            f": {parts['test_rows_unseen']} unseen test rows + {parts['pinned_rows']} "
            f"pinned-holdout rows (version {version})"
        )
    if result.interval is None or result.gain is None or result.confidence is None:
        return f"{n}; no paired interval (no champion, or the metric is undefined)"
    low, high = result.interval
    resamples = result.rules.get("resamples", "?")
    # The gain is signed so that positive is better: for a lower-is-better metric (log loss,
    # RMSE) it is champion - challenger.
    order = "challenger - champion" if HIGHER_IS_BETTER[result.metric] else "champion - challenger"
    return (
        f"{result.metric} {order} {result.gain:+.4f}, "
        f"{_pct(result.confidence)} CI [{low:+.4f}, {high:+.4f}] "
        f"(paired bootstrap over holdout rows, {resamples} resamples), {n}"
    )


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
