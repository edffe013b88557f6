"""Two recorded runs side by side: metrics, the params that differ, ROC and precision-recall
curves, slice metrics. Everything is read from the two record commits (`run/<id>` tags), so
any two runs compare, whatever the workspace holds now."""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import yaml

from retrain.config import PARAMS_FILE, Params
from retrain.history.chart import Series, line_chart
from retrain.history.page import STYLE
from retrain.history.table import BASELINES, MODEL_KEYS, direction, fmt, ours
from retrain.infra.git import show
from retrain.project import rel
from retrain.registry.record import find_run

Row = tuple[str, str, str]  # name, run A's value, run B's value


@dataclass(frozen=True)
class Side:
    """One run as its record commit holds it."""

    run_id: str
    record: dict[str, Any]
    evaluate: dict[str, Any]
    params: dict[str, Any]  # params.yaml as the run used it, flattened to dotted keys
    roc: list[dict[str, Any]]
    pr: list[dict[str, Any]]
    slices: dict[str, Any]


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as {"a.b.c": value}; a list is one value."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _json_at(root: Path, ref: str, path: Path, default: Any) -> Any:
    text = show(root, ref, rel(root, path))
    return json.loads(text) if text else default


def load(root: Path, params: Params, run_id: str) -> Side:
    """Run `run_id` (or `run/<id>`) from its record commit.

    Raises:
        RetrainError: no such record (the message lists recent runs).
    """
    rec = find_run(root, params, run_id)
    ref, p = f"refs/tags/run/{rec['run_id']}", params.paths
    run_params = yaml.safe_load(show(root, ref, PARAMS_FILE) or "{}") or {}
    tuned = (rec.get("tuned_params") or {}).get("params") or {}
    return Side(
        run_id=rec["run_id"],
        record=rec,
        evaluate=_json_at(root, ref, p.metrics, {}),
        params={**flatten(run_params), **flatten({"tuned": tuned})},
        roc=_json_at(root, ref, p.roc_plot, []),
        pr=_json_at(root, ref, p.pr_plot, []),
        slices=_json_at(root, ref, p.slice_metrics, {}),
    )


def metric_rows(a: Side, b: Side) -> list[Row]:
    """Ours, then each baseline, every metric either run measured; then the gate."""
    rows: list[Row] = []
    models = [("ours", ours(a.evaluate), ours(b.evaluate))]
    models += [(n, a.evaluate.get(n, {}), b.evaluate.get(n, {})) for n in BASELINES]
    for model, ma, mb in models:
        # Numbers only: a multiclass model's per-class figures and confusion matrix are
        # tables of their own, not one cell.
        for key in sorted(k for k in set(ma) | set(mb) if _scalar(ma.get(k), mb.get(k))):
            rows.append((f"{model} {key}", _cell(ma.get(key)), _cell(mb.get(key))))
    for key, get in (
        ("reason", lambda r: r["reason"]),
        ("model version", lambda r: r["model"].get("version") or "-"),
        ("gate decision", lambda r: r["gate"]["decision"]),
        ("gate: why", lambda r: "; ".join(r["gate"].get("reasons") or [])),
    ):
        rows.append((key, str(get(a.record)), str(get(b.record))))
    return rows


def _scalar(*values: Any) -> bool:
    return all(not isinstance(v, dict | list) for v in values)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return fmt(value)
    return "-" if value is None else str(value)


def params_diff(a: Side, b: Side) -> list[Row]:
    """The params (and tuned hyperparameters) whose values differ between the runs."""
    keys = sorted(set(a.params) | set(b.params))
    return [
        (k, _cell(a.params.get(k)), _cell(b.params.get(k)))
        for k in keys
        if a.params.get(k) != b.params.get(k)
    ]


def slice_rows(a: Side, b: Side, metric: str) -> list[Row]:
    """Each slice's `metric` in both runs (slices.json: column -> value -> metrics)."""

    def flat(slices: dict[str, Any]) -> dict[str, Any]:
        found = {}
        for column, values in (slices.get("slices") or {}).items():
            for value, entry in values.items():
                found[f"{column}={value}"] = (entry.get("metrics") or {}).get(metric)
        return found

    fa, fb = flat(a.slices), flat(b.slices)
    return [(k, _cell(fa.get(k)), _cell(fb.get(k))) for k in sorted(set(fa) | set(fb))]


def _grid(rows: list[Row], width: int = 36) -> list[str]:
    return [f"  {n:<{width}} {va:>22} {vb:>22}" for n, va, vb in rows]


def text(a: Side, b: Side, metric: str) -> str:
    """The comparison as plain text (`retrain compare`)."""
    head = f"  {'':<36} {a.run_id:>22} {b.run_id:>22}"
    lines = [f"metrics (the gate's: {metric}, {direction(metric)})", head]
    lines += _grid(metric_rows(a, b))
    lines += ["params that differ", head, *(_grid(params_diff(a, b)) or ["  (none)"])]
    lines += [f"slices ({metric})", head, *(_grid(slice_rows(a, b, metric)) or ["  (none)"])]
    return "\n".join(lines) + "\n"


def _curve_chart(a: Side, b: Side, points: str, x: str, title: str) -> str:
    """Ours in both runs, and each baseline in both, over the curve's x grid; nothing when
    neither run has the curve (a regression or multiclass run writes no ROC or PR file)."""
    data = {"A": getattr(a, points), "B": getattr(b, points)}
    if not data["A"] and not data["B"]:
        return ""
    grid = [p.get(x) for p in data["A"] or data["B"]]
    series = []
    for model in (MODEL_KEYS, *((n,) for n in BASELINES)):  # each model in A, then in B
        name = "ours" if model is MODEL_KEYS else model[0]
        for label, rows in data.items():
            by_x = {p.get(x): p for p in rows}
            values = [_first(by_x.get(g, {}), model) for g in grid]
            series.append(Series(f"{name} {label}", values))
    labels = [f"{g:.2f}" if isinstance(g, float) else str(g) for g in grid]
    chart = line_chart(labels, series, title)
    return f"<figure class='plot'><figcaption>{escape(title)}</figcaption>{chart}</figure>"


def _first(point: dict[str, Any], keys: tuple[str, ...]) -> float | None:
    for k in keys:
        if isinstance(point.get(k), int | float):
            return float(point[k])
    return None


def _table(rows: list[Row], a: Side, b: Side, table_id: str) -> str:
    head = f"<tr><th></th><th>A: {escape(a.run_id)}</th><th>B: {escape(b.run_id)}</th></tr>"
    body = "".join(
        f"<tr><td>{escape(n)}</td><td class='num'>{escape(va)}</td>"
        f"<td class='num'>{escape(vb)}</td></tr>"
        for n, va, vb in rows
    )
    return f"<table id='{table_id}'><thead>{head}</thead><tbody>{body}</tbody></table>"


def _plots(a: Side, b: Side) -> str:
    charts = _curve_chart(
        a, b, "roc", "fpr", "ROC: true positive rate by false positive rate"
    ) + _curve_chart(a, b, "pr", "recall", "Precision by recall")
    return "<h2>Plots (test split)</h2>" + charts if charts else ""


def render(a: Side, b: Side, metric: str) -> str:
    """The comparison as one offline HTML page (inline CSS and SVG)."""
    title = f"Run {a.run_id} (A) vs {b.run_id} (B)"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1><h2>Metrics</h2><p class='note'>The gate's metric: "
        f"{escape(metric)}, {direction(metric)}.</p>{_table(metric_rows(a, b), a, b, 'metrics')}"
        f"<h2>Params that differ</h2>{_table(params_diff(a, b), a, b, 'params')}"
        + _plots(a, b)
        + f"<h2>Slices ({escape(metric)})</h2>{_table(slice_rows(a, b, metric), a, b, 'slices')}"
        + "</body></html>\n"
    )
