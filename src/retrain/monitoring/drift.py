"""Data, prediction and target drift with Evidently 0.7 (Report + presets + tests).

Evidently's snapshot is turned into named fields here (column -> method, score, threshold,
drifted), so the gate never reads metrics by position. Whether a column drifted is Evidently's
own test verdict: p-value methods drift below the threshold, distances above it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.config import DatasetSchema, DriftParams, Params
from retrain.markdown import STYLE
from retrain.task import Task, task_for

# The model's scores, as a column of the drift data: the name Evidently's report shows.
PREDICTION = "model score"


@dataclass(frozen=True)
class _Kind:
    """How a task's prediction and target enter the drift report."""

    prediction: str  # the prediction's column, named for what it holds
    prediction_numeric: bool  # else categorical (compared as a class distribution)
    target_numeric: bool
    # The cleaned target is an index into dataset.classes (retrain.data.clean), shown by name.
    target_indexes_classes: bool = False


# Binary: the positive class's probability (a score) and the 0/1 labels; multiclass: the
# predicted class (its probabilities sum to 1, so the class distribution is what moves) and
# the labels; regression: the predicted value and the target value, both in the target's units.
KINDS = {
    "binary": _Kind(PREDICTION, prediction_numeric=True, target_numeric=False),
    "multiclass": _Kind(
        "predicted class",
        prediction_numeric=False,
        target_numeric=False,
        target_indexes_classes=True,
    ),
    "regression": _Kind("predicted value", prediction_numeric=True, target_numeric=True),
}


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str  # numeric, categorical, prediction or target
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DriftReport:
    reference_rows: int
    current_rows: int
    features: list[ColumnDrift]
    prediction: ColumnDrift | None = None
    target: ColumnDrift | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted_features(self) -> list[str]:
        return [c.column for c in self.features if c.drifted]

    @property
    def share_drifted(self) -> float:
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["features"] = {c.column: asdict(c) for c in self.features}
        out["drifted_features"] = self.drifted_features
        out["share_drifted"] = round(self.share_drifted, 6)
        return out


@dataclass(frozen=True)
class DriftVerdict:
    """The drift gate's verdict: tripped (retrain) or not, and why."""

    tripped: bool
    reasons: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"tripped": self.tripped, "reasons": self.reasons}


def gate(report: DriftReport, cfg: DriftParams) -> DriftVerdict:
    """Trip when too many features drift, or the model's scores or the labels drift."""
    reasons = []
    if report.share_drifted > cfg.max_share_drifted:
        reasons.append(
            f"{len(report.drifted_features)} of {len(report.features)} feature columns drifted "
            f"({report.share_drifted:.0%} > {cfg.max_share_drifted:.0%}): "
            + ", ".join(report.drifted_features)
        )
    if cfg.gate_on_prediction and report.prediction and report.prediction.drifted:
        p = report.prediction
        reasons.append(f"prediction drift: {p.method} {p.score:.4g} (threshold {p.threshold})")
    if cfg.gate_on_target and report.target and report.target.drifted:
        t = report.target
        reasons.append(f"target drift: {t.method} {t.score:.4g} (threshold {t.threshold})")
    return DriftVerdict(bool(reasons), reasons)


def _params(obj: Any) -> dict[str, Any]:
    config = obj if isinstance(obj, dict) else getattr(obj, "__dict__", {})
    return dict(config.get("params", config))


def _verdicts(snapshot: dict[str, Any]) -> dict[str, bool]:
    """column -> drifted, from Evidently's ValueDrift tests."""
    out = {}
    for test in snapshot.get("tests", []):
        params = _params(test.get("metric_config") or {})
        if "ValueDrift" in str(params.get("type", "")) and "column" in params:
            out[str(params["column"])] = "FAIL" in str(test.get("status"))
    return out


def _values(snapshot: dict[str, Any]) -> dict[str, tuple[str, float, float]]:
    """column -> (method, score, threshold), from the ValueDrift metrics' own configs."""
    out = {}
    for metric in snapshot.get("metrics", []):
        config = metric.get("config") or {}
        if "ValueDrift" not in str(config.get("type", "")):
            continue
        out[str(config["column"])] = (
            str(config.get("method")),
            float(metric["value"]),
            float(config["threshold"]),
        )
    return out


@dataclass
class _Frames:
    """Reference and current data as Evidently reads them, with each column's role."""

    ref: pd.DataFrame
    cur: pd.DataFrame
    numeric: list[str]
    categorical: list[str]
    has_target: bool
    kind: _Kind


def target_is_numeric(schema: DatasetSchema) -> bool:
    """Whether the drift report compares `schema`'s target as numbers (regression) rather
    than as a distribution of labels."""
    return KINDS[task_for(schema).kind].target_numeric


def _prediction_column(task: Task, scores: Any) -> Any:
    """The prediction as the drift report compares it: a multiclass row's probabilities
    (rows, classes) become the name of its most probable class; the others are compared as
    they are (binary: P(positive), regression: the value)."""
    if not KINDS[task.kind].prediction_numeric:
        names = pd.Categorical([str(c) for c in task.classes])
        return names[np.asarray(scores).argmax(axis=1)]
    return scores


def _target_column(frame: pd.DataFrame, target: str, task: Task) -> pd.Series:
    """The target as compared: labels as categories, a regression target as its value."""
    if KINDS[task.kind].target_numeric:
        return frame[target].astype("float64")
    return frame[target].astype(str).astype("category")


def _frames(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: DatasetSchema,
    reference_scores: Any,
    current_scores: Any,
) -> _Frames:
    task = task_for(schema)
    kind = KINDS[task.kind]
    if kind.prediction in schema.features:
        raise ValueError(f"dataset column {kind.prediction!r} clashes with the drift report's own")
    ref, cur = reference.copy(), current.copy()
    # A 0/1 flag is a category for drift purposes: a normed Wasserstein distance on two values
    # swings with sampling noise and would flag calm batches.
    flags = [c for c in schema.numeric if ref[c].dropna().nunique() <= 2]
    numeric = [c for c in schema.numeric if c not in flags]
    categorical = [*schema.categorical, *flags]
    for frame in (ref, cur):
        # pandas categoricals: Evidently's value counts on them are ~10x faster than on objects.
        for col in categorical:
            frame[col] = frame[col].astype("category")
    if reference_scores is not None and current_scores is not None:
        ref[kind.prediction] = _prediction_column(task, reference_scores)
        cur[kind.prediction] = _prediction_column(task, current_scores)
        (numeric if kind.prediction_numeric else categorical).append(kind.prediction)
    has_target = schema.target in cur.columns and bool(cur[schema.target].notna().all())
    if has_target:
        for frame in (ref, cur):
            frame[schema.target] = _target_column(frame, schema.target, task)
        (numeric if kind.target_numeric else categorical).append(schema.target)
    return _Frames(ref, cur, numeric, categorical, has_target, kind)


def _drift_metrics(f: _Frames, target: str, cfg: DriftParams) -> list[Any]:
    """One ValueDrift per column, with the method and threshold params.yaml gives its role."""
    from evidently.metrics import ValueDrift

    def metric(col: str) -> Any:
        if col == f.kind.prediction:
            method, threshold = (
                (cfg.prediction_method, cfg.prediction_threshold)
                if f.kind.prediction_numeric
                else (cfg.prediction_cat_method, cfg.prediction_cat_threshold)
            )
            return ValueDrift(column=col, method=method, threshold=threshold)
        if col == target and f.has_target:
            method, threshold = (
                (cfg.target_num_method, cfg.target_num_threshold)
                if f.kind.target_numeric
                else (cfg.target_method, cfg.target_threshold)
            )
            return ValueDrift(column=col, method=method, threshold=threshold)
        default, threshold = (
            (cfg.num_method, cfg.num_threshold)
            if col in f.numeric
            else (cfg.cat_method, cfg.cat_threshold)
        )
        method = cfg.per_column_method.get(col, default)
        return ValueDrift(column=col, method=method, threshold=threshold)

    # One ValueDrift per column, not DataDriftPreset: the preset also runs the legacy
    # dataset-drift metrics, which compute every column's test twice more and render plots;
    # the share of drifted columns is counted here from the same per-column verdicts.
    return [metric(c) for c in f.numeric + f.categorical]


def _to_report(raw: dict[str, Any], f: _Frames, target: str) -> DriftReport:
    values, verdicts = _values(raw), _verdicts(raw)
    roles = {f.kind.prediction, target if f.has_target else None}

    def column(name: str, kind: str) -> ColumnDrift:
        method, score, threshold = values[name]
        # Rounded: Evidently sums categories in set order, which varies with the process's
        # hash seed, so the last bits of a score vary from run to run (and a replay of a
        # run would not be byte-identical). The verdict is Evidently's own, unrounded.
        return ColumnDrift(name, kind, method, round(float(score), 6), threshold, verdicts[name])

    predicted = f.kind.prediction
    return DriftReport(
        reference_rows=len(f.ref),
        current_rows=len(f.cur),
        features=[column(c, "numeric") for c in f.numeric if c not in roles]
        + [column(c, "categorical") for c in f.categorical if c not in roles],
        prediction=column(predicted, "prediction") if predicted in values else None,
        target=column(target, "target") if f.has_target else None,
    )


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: DatasetSchema,
    cfg: DriftParams,
    *,
    reference_scores: Any = None,
    current_scores: Any = None,
    html: Path | None = None,
) -> DriftReport:
    """Per-column drift of `current` against `reference`, plus prediction and target drift.

    Args:
        reference: the training reference (raw feature columns).
        current: the new batch.
        schema: which columns are numeric, categorical, and the target.
        cfg: methods and thresholds (params.yaml `drift`).
        reference_scores, current_scores: the production model's scores on each, if any.
        html: write Evidently's HTML report here, opening on a summary (`summary_html`).
    """
    from evidently import DataDefinition, Dataset, Report

    f = _frames(reference, current, schema, reference_scores, current_scores)
    definition = DataDefinition(numerical_columns=f.numeric, categorical_columns=f.categorical)
    columns = f.numeric + f.categorical
    snapshot = Report(_drift_metrics(f, schema.target, cfg), include_tests=True).run(
        Dataset.from_pandas(f.cur[columns], data_definition=definition),
        Dataset.from_pandas(f.ref[columns], data_definition=definition),
    )
    report = _to_report(snapshot.dict(), f, schema.target)
    if html is not None:
        page = snapshot.get_html_str(as_iframe=False)
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(with_summary(page, summary_html(report, gate(report, cfg))))
    return report


def summary_html(report: DriftReport, verdict: DriftVerdict) -> str:
    """The block a drift page opens on: the gate's verdict, then the drifted columns first."""
    head = "Drift gate: tripped" if verdict.tripped else "Drift gate: passed"
    reasons = "".join(f"<li>{escape(r)}</li>" for r in verdict.reasons) or (
        "<li>no column, prediction or target drift above the thresholds in params.yaml</li>"
    )
    extra = [c for c in (report.prediction, report.target) if c is not None]
    ranked = sorted([*report.features, *extra], key=lambda c: (not c.drifted, c.column))
    rows = "".join(
        f"<tr><td>{escape(c.column)}</td><td>{c.kind}</td><td>{escape(c.method)}</td>"
        f"<td>{c.score:.4g}</td><td>{c.threshold:g}</td>"
        f"<td>{'<b>drifted</b>' if c.drifted else 'no'}</td></tr>"
        for c in ranked
    )
    drifted = ", ".join(report.drifted_features) or "none"
    # The reports' look (retrain.markdown.STYLE), scoped to the block: Evidently's page below
    # keeps its own.
    style = re.sub(
        r"(^|,)\s*([a-z][a-z ,]*?)\s*(?=[{,])", r"\1 #drift-summary \2 ", STYLE, flags=re.M
    )
    style = style.replace("#drift-summary body", "#drift-summary")
    return (
        f'<section id="drift-summary"><style>{style}</style>'
        f"<h1>{head}</h1><ul>{reasons}</ul>"
        f"<p>{len(report.drifted_features)} of {len(report.features)} feature columns drifted "
        f"({escape(drifted)}); {report.current_rows} rows against {report.reference_rows} "
        "reference rows. Evidently's per-column sections follow.</p>"
        "<table><thead><tr><th>column</th><th>kind</th><th>method</th><th>score</th>"
        f"<th>threshold</th><th>drifted</th></tr></thead><tbody>{rows}</tbody></table>"
        "</section>"
    )


def with_summary(page: str, summary: str) -> str:
    """Evidently's standalone page with `summary` as the first thing in its body."""
    start = page.find("<body>")
    if start < 0:
        raise ValueError("Evidently's HTML has no <body> to put the drift summary in")
    at = start + len("<body>")
    return page[:at] + summary + page[at:]


def labelled(frame: pd.DataFrame, schema: DatasetSchema) -> pd.DataFrame:
    """The cleaned frame with its target under the target's own name again: 0/1 (binary),
    the class's name (multiclass: clean encodes it as its index in dataset.classes, and the
    drift report shows classes by name), the value (regression)."""
    from retrain.data.clean import TARGET

    task = task_for(schema)
    out = frame.rename(columns={TARGET: schema.target})
    if KINDS[task.kind].target_indexes_classes and schema.target in out.columns:
        names = [str(c) for c in task.classes]
        out[schema.target] = out[schema.target].map(lambda i: names[int(i)])
    return out


def batch_drift(
    batch: pd.DataFrame, params: Params, html: Any = None, model: tuple[Any, Any] | None = None
) -> dict[str, Any]:
    """Drift of a raw batch against the train split, with a model's scores, and the verdict.

    Args:
        batch: the raw batch.
        params: schema, drift settings and the paths of the train split and workspace model.
        html: where to write Evidently's report for people, if anywhere.
        model: (preprocessor, ONNX model) to score with (the monitor flow passes the prod
            version's); default the workspace model, which is what the drift stage checks.
    """
    from retrain.data.clean import clean

    schema = params.dataset
    reference = pd.read_parquet(params.paths.train)
    current, _ = clean(batch, schema, params.prepare.fill_values, drop_duplicates=False)
    predictor = scorer(params, model)
    report = compute_drift(
        labelled(reference, schema),
        labelled(current, schema),
        schema,
        params.drift,
        reference_scores=predictor.predict_proba(reference),
        current_scores=predictor.predict_proba(current),
        html=html,
    )
    return judged(report, params.drift)


def scorer(params: Params, model: tuple[Any, Any] | None) -> Any:
    """The model whose scores drift compares (a batch's and traffic's alike): `model`
    ((preprocessor, ONNX model), the monitor passes the prod version's), else the workspace's."""
    from retrain.models.predictor import Predictor

    return Predictor(*(model or (params.paths.preprocessor, params.paths.onnx_model)))


def judged(report: DriftReport, cfg: DriftParams) -> dict[str, Any]:
    """The report's named fields and the gate's verdict on them, as drift.json holds them."""
    return {**report.to_dict(), "gate": gate(report, cfg).to_dict()}
