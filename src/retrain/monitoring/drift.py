"""Data, prediction and target drift with Evidently 0.7 (Report + presets + tests).

Evidently's snapshot is turned into named fields here (column -> method, score, threshold,
drifted), so the gate never reads metrics by position. Whether a column drifted is Evidently's
own test verdict: p-value methods drift below the threshold, distances above it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from retrain.config import DatasetSchema, DriftParams, Params

PREDICTION = "__score__"


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
        html: write Evidently's HTML report here.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

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

    def method(col: str, default: str, threshold: float) -> Any:
        return ValueDrift(
            column=col, method=cfg.per_column_method.get(col, default), threshold=threshold
        )

    # One ValueDrift per column, not DataDriftPreset: the preset also runs the legacy
    # dataset-drift metrics, which compute every column's test twice more and render plots;
    # the share of drifted columns is counted here from the same per-column verdicts.
    metrics: list[Any] = [method(c, cfg.num_method, cfg.num_threshold) for c in numeric]
    metrics += [method(c, cfg.cat_method, cfg.cat_threshold) for c in categorical]
    if reference_scores is not None and current_scores is not None:
        ref[PREDICTION], cur[PREDICTION] = reference_scores, current_scores
        numeric.append(PREDICTION)
        metrics.append(
            ValueDrift(
                column=PREDICTION, method=cfg.prediction_method, threshold=cfg.prediction_threshold
            )
        )
    has_target = schema.target in cur.columns and cur[schema.target].notna().all()
    if has_target:
        for frame in (ref, cur):
            frame[schema.target] = frame[schema.target].astype(str).astype("category")
        categorical.append(schema.target)
        metrics.append(
            ValueDrift(
                column=schema.target, method=cfg.target_method, threshold=cfg.target_threshold
            )
        )
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    columns = numeric + categorical
    snapshot = Report(metrics, include_tests=True).run(
        Dataset.from_pandas(cur[columns], data_definition=definition),
        Dataset.from_pandas(ref[columns], data_definition=definition),
    )
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html))
    raw = snapshot.dict()
    values, verdicts = _values(raw), _verdicts(raw)

    def column(name: str, kind: str) -> ColumnDrift:
        method, score, threshold = values[name]
        # Rounded: Evidently sums categories in set order, which varies with the process's
        # hash seed, so the last bits of a score vary from run to run (and a replay of a
        # run would not be byte-identical). The verdict is Evidently's own, unrounded.
        return ColumnDrift(name, kind, method, round(float(score), 6), threshold, verdicts[name])

    return DriftReport(
        reference_rows=len(ref),
        current_rows=len(cur),
        features=[column(c, "numeric") for c in numeric if c != PREDICTION]
        + [column(c, "categorical") for c in categorical if c != schema.target],
        prediction=column(PREDICTION, "prediction") if PREDICTION in values else None,
        target=column(schema.target, "target") if has_target else None,
    )


def labelled(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """The cleaned frame with its 0/1 target under the target's own name again."""
    from retrain.data.clean import TARGET

    return frame.rename(columns={TARGET: target})


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
    from retrain.models.predictor import Predictor

    schema = params.dataset
    reference = pd.read_parquet(params.paths.train)
    current, _ = clean(batch, schema, params.prepare.fill_values, drop_duplicates=False)
    predictor = Predictor(*(model or (params.paths.preprocessor, params.paths.onnx_model)))
    report = compute_drift(
        labelled(reference, schema.target),
        labelled(current, schema.target),
        schema,
        params.drift,
        reference_scores=predictor.predict_proba(reference),
        current_scores=predictor.predict_proba(current),
        html=html,
    )
    verdict = gate(report, params.drift)
    return {**report.to_dict(), "gate": verdict.to_dict()}
