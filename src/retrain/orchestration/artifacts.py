"""What the flows show in the Prefect UI, built from the files the stages write.

The builders are plain functions over dicts (tested without Prefect); `publish_*` hand their
output to Prefect's artifact API and only work inside a flow or task run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain.model_key import OURS
from retrain.report import short_names
from retrain.task import HIGHER_IS_BETTER, BinaryTask, Task, task_for

if TYPE_CHECKING:
    from retrain.config import Params
    from retrain.registry.champion import Champion
    from retrain.registry.gate import GateResult

# The rows a task's metric table adds after its metrics: the expected calibration error where
# the gate bounds it (classification; multiclass: of the top class), and the decision
# threshold, which only a binary model has (evaluate.threshold).
# A regression model's calibration is its interval's coverage (of the holdout's rows), which
# the gate holds near the interval's level, neither higher nor lower.
EXTRA_ROWS = {"binary": ("ece", "threshold"), "multiclass": ("ece",), "regression": ("coverage",)}
NEAR_LEVEL = "near its level"

# What the gate scores both models with: what predict serves, per task.
SERVED = {
    "binary": "served, uncalibrated scores",
    "multiclass": "served, uncalibrated probabilities",
    "regression": "served predictions",
}

# Short headers: at a 1400 px window every column of the metrics table shows in the Prefect UI
# (issue 28); the table's description says what each means.
HOLDOUT_OURS = "ours, holdout"
HOLDOUT_PROD = "prod, holdout"
AS_RECORDED = "prod, recorded"


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def _r(value: Any) -> Any:
    """4 digits: the UI shows what the gate compares, not float noise."""
    return round(float(value), 4) if isinstance(value, int | float) else value


def better(metric: str) -> str:
    """Which way `metric` is better: "higher" or "lower" (retrain.task)."""
    return "higher" if HIGHER_IS_BETTER.get(metric, True) else "lower"


def difference(metric: str) -> str:
    """The gain the gate measures, in words: ours - production where higher is better,
    production - ours where lower is (positive: ours is better either way)."""
    return "ours - production" if better(metric) == "higher" else "production - ours"


def metrics_rows(
    columns: dict[str, str],
    metrics: dict[str, Any],
    production: dict[str, Any] | None,
    gate: GateResult | None = None,
    task: Task | None = None,
) -> list[dict[str, Any]]:
    """One row per metric of `task` (default binary) and its extra rows (EXTRA_ROWS): which
    way is better, this run's models on this run's test split (a column per model key, named
    by `columns`: `retrain.report.short_names`), the gate's numbers (ours and production
    scored on the same holdout), and production's figures as recorded on its own, older test
    split (labelled so: not comparable). The gate's rules and interval are in the gate
    artifact: with them the table did not fit a 1400 px window (issue 28)."""
    task = task or BinaryTask(["positive"])
    rows = []
    holdout_ours = dict(gate.challenger) if gate else {}
    holdout_prod = dict(gate.champion or {}) if gate else {}
    for name in [*task.metrics, *EXTRA_ROWS[task.kind]]:
        row: dict[str, Any] = {
            "metric": name,
            "better": {"threshold": "", "coverage": NEAR_LEVEL}.get(name) or better(name),
        }
        for key, label in columns.items():
            row[label] = _r(metrics.get(key, {}).get(name))
        if name == "threshold":  # our model's decision threshold (evaluate.threshold)
            row[columns[OURS]] = _r(metrics.get("threshold"))
        row[HOLDOUT_OURS] = _r(holdout_ours.get(name))
        row[HOLDOUT_PROD] = _r(holdout_prod.get(name))
        row[AS_RECORDED] = _r((production or {}).get(OURS, {}).get(name))
        rows.append(row)
    return rows


def validation_markdown(summary: dict[str, Any]) -> str:
    """The validation summary as Markdown: verdict, then every failure with its column."""
    tables = summary.get("tables", [])
    ok = summary.get("success", all(t.get("success") for t in tables))
    lines = [f"## Data validation: {'passed' if ok else 'FAILED'}", ""]
    for table in tables:
        lines.append(f"**{table.get('source') or 'raw data'}** — {table.get('headline', '')}")
        failures = table.get("failures", [])
        if failures:
            lines += ["", "| severity | column | expectation | detail |", "|---|---|---|---|"]
            for f in failures:
                detail = str(f.get("detail", "")).replace("|", "\\|")
                lines.append(
                    f"| {f['severity']} | {f.get('column') or '(table)'} | "
                    f"{f['expectation']} | {detail} |"
                )
        lines.append("")
    return "\n".join(lines)


def drift_digest(summary: dict[str, Any]) -> dict[str, Any]:
    """The few fields of a drift summary worth passing to the retrain run."""
    return {
        "batch": summary.get("batch"),
        "share_drifted": summary.get("share_drifted"),
        "drifted_features": summary.get("drifted_features", []),
        "reasons": summary["gate"]["reasons"],
        # The batch's Evidently report as the monitor published it: the retrain's outcome
        # notification links it.
        "report": summary.get("report"),
    }


def drift_markdown(summary: dict[str, Any]) -> str:
    """Verdict, gate reasons, then one row per column that was checked."""
    gate = summary["gate"]
    verdict = "gate TRIPPED: retrain" if gate["tripped"] else "gate passed"
    lines = [f"## Drift of `{summary.get('batch')}`: {verdict}", ""]
    lines += [f"- {reason}" for reason in gate["reasons"]]
    lines += [
        f"- rows: reference {summary.get('reference_rows')}, batch {summary.get('current_rows')}",
        "",
        "| column | kind | method | score | threshold | drifted |",
        "|---|---|---|---:|---:|---|",
    ]
    columns = list(summary.get("features", {}).values())
    columns += [summary[k] for k in ("prediction", "target") if summary.get(k)]
    for c in columns:
        lines.append(
            f"| {c['column']} | {c['kind']} | {c['method']} | {c['score']:.4g} | "
            f"{c['threshold']} | {'yes' if c['drifted'] else ''} |"
        )
    return "\n".join(lines)


def record_markdown(record: dict[str, Any]) -> str:
    """A run record in a few lines: what ran on which data, and what became of the model."""
    model, metric = record["model"], record["gate"]["metric"]
    promoted = (
        "promoted to prod"
        if model["promoted"]
        else f"not promoted (prod: `{model['name']}@{model['prod']}`)"
    )
    return "\n".join(
        [
            f"## Record `run/{record['run_id']}` ({record['reason']})",
            "",
            f"- code: `{record['code_revision'][:12]}`; data: `{record['data']['md5']}` "
            f"({len(record['data']['batches'])} batches)",
            f"- {metric} ({better(metric)} is better): {_fmt4(record['metrics'].get(metric))}"
            + (f"; ECE {_fmt4(record['metrics']['ece'])}" if "ece" in record["metrics"] else ""),
            *_gate_lines(record["gate"]),
            f"- model: `{model['name']}@{model['version']}`, {promoted}",
            f"- replay: `retrain reproduce {record['run_id']}`",
        ]
    )


def run_card_markdown(card: str, record: dict[str, Any]) -> str:
    """The workspace model card (written by `dvc repro`, before the gate) with what only the
    run's record knows: the registry version, the gate's decision and why, and the command
    that rebuilds this run (overrides included)."""
    model, gate = record["model"], record["gate"]
    if model.get("registered", True) and model.get("version"):
        version = f"`{model['name']}@{model['version']}`"
    else:
        version = "not registered"
    lines = [
        "",
        f"## This run: `run/{record['run_id']}` ({record['reason']})",
        "",
        f"- registry version: {version}; in production: `{model['name']}@{model['prod']}`",
        f"- gate decision: {gate.get('decision', 'unknown')}"
        + ("" if model["promoted"] else " (not promoted)"),
        *(f"  - {reason}" for reason in gate.get("reasons") or []),
        f"- Rebuild: `retrain reproduce {record['run_id']}` (replays this run's overrides: "
        f"{record.get('overrides') or 'none'})",
    ]
    return card.rstrip("\n") + "\n" + "\n".join(lines) + "\n"


def publish_run_card(params: Params, run: str, record: dict[str, Any]) -> None:
    """The run's model card with its record's facts (run_card_markdown): the `model-card`
    artifact, and the HTML copy in the run's folder (the one its link opens)."""
    from retrain.analysis.card import render_html
    from retrain.orchestration import reports

    if not params.paths.model_card_md.exists():
        return
    card = run_card_markdown(params.paths.model_card_md.read_text(), record)
    publish_markdown("model-card", card, "Model card of this run's model")
    page = reports.run_folder(params, run) / "model_card.html"
    if page.exists():
        page.write_text(render_html(card, f"Model card: {params.dataset.name}"))


def _gate_lines(gate: dict[str, Any]) -> list[str]:
    """The gate's decision, paired difference, interval and n (absent from old records)."""
    if "decision" not in gate:
        return []
    line = f"- gate: {gate['decision']}"
    if gate.get("interval") and gate.get("gain") is not None:
        low, high = gate["interval"]
        line += (
            f", {gate['metric']} {difference(gate['metric'])} {gate['gain']:+.4f}, "
            f"{gate['confidence']:.0%} CI [{low:+.4f}, {high:+.4f}]"
        )
    return [line + f", n = {gate.get('rows')}"]


def _fmt4(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else str(value)


def file_link(path: Path) -> str:
    return path.resolve().as_uri()


def publish_table(key: str, rows: list[dict[str, Any]], description: str) -> None:
    from prefect.artifacts import create_table_artifact

    create_table_artifact(key=key, table=rows, description=description)


def publish_markdown(key: str, markdown: str, description: str) -> None:
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(key=key, markdown=markdown, description=description)


def publish_link(key: str, path: Path, description: str) -> None:
    from prefect.artifacts import create_link_artifact

    create_link_artifact(
        key=key, link=file_link(path), link_text=str(path), description=description
    )


def publish_link_url(key: str, url: str, text: str, description: str) -> None:
    from prefect.artifacts import create_link_artifact

    create_link_artifact(key=key, link=url, link_text=text, description=description)


def publish_validation(repo: Path, params: Params, run: str) -> None:
    """The validation summary, and a link to this run's copy of the Data Docs."""
    from retrain.orchestration import reports

    summary = read_json(params.paths.validation_summary)
    if summary is not None:
        publish_markdown("validation-summary", validation_markdown(summary), "Great Expectations")
    copies = reports.publish(params, run, {"data_docs": params.paths.data_docs})
    if "data_docs" in copies:
        page = copies["data_docs"] / "index.html"
        publish_link_url(
            "data-docs",
            reports.url_for(params, page, repo),
            f"{run}: Data Docs",
            "Great Expectations Data Docs of this run's validation",
        )


def trials_rows(path: Path) -> list[dict[str, Any]]:
    import csv

    if not path.exists():
        return []
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["trial"] = int(row["trial"]) + 1  # as the log counts them: 1 of N
        row["value"] = _r(float(row["value"])) if row.get("value") else None
    return rows


def publish_trials(params: Params) -> None:
    rows = trials_rows(params.paths.tune_trials)
    if rows:
        monitor = task_for(params.dataset).monitor
        publish_table("tune-trials", rows, f"Optuna trials of this run ({monitor}; pruned: none)")


def gate_markdown(params: Params, decision: GateResult, champion: Champion | None) -> str:
    from retrain.registry import gate

    label = f"`{champion.model.label}`" if champion else None
    return gate.markdown(decision, label, "this run's model", max_ece=params.registry.gate.max_ece)


def publish_gate(params: Params, decision: GateResult, champion: Champion | None) -> None:
    """The gate's decision and the metrics table, both on the task that decided."""
    publish_markdown(
        "gate", gate_markdown(params, decision, champion), f"Gate: {decision.decision}"
    )
    publish_metrics(params, decision, champion)


def publish_metrics(params: Params, decision: GateResult, champion: Champion | None) -> None:
    """The `metrics` table: the task's metrics of this run's models, the gate's numbers."""
    metrics, task = read_json(params.paths.metrics) or {}, task_for(params.dataset)
    publish_table(
        "metrics",
        metrics_rows(
            short_names(params.model, task),
            metrics,
            champion.metrics if champion else None,
            decision,
            task,
        ),
        "Test metrics, 4 digits. Holdout: the gate's numbers, ours and production (prod) "
        f"scored on the same holdout ({SERVED[task.kind]}; the interval is in the gate "
        "artifact with its rules). Recorded: production as recorded on its own, older test "
        "split.",
    )


def publish_run_reports(repo: Path, params: Params, run: str) -> dict[str, str]:
    """Copy this run's plots page, model card and drift report to its folder; link them."""
    from retrain.orchestration import reports

    paths = params.paths
    copies = reports.publish(
        params,
        run,
        {
            "plots": paths.plots_html,
            "model_card.html": paths.model_card_html,
            "drift.html": paths.drift_html,
        },
    )
    pages = {
        "plots": ("plots", "index.html", "DVC plots of this run"),
        "model_card.html": ("model-card-page", "", "Model card of this run (HTML)"),
        "drift.html": ("drift-report", "", "Drift report of this run (Evidently)"),
    }
    urls = {}
    for name, (key, inner, description) in pages.items():
        if name in copies:
            target = copies[name] / inner if inner else copies[name]
            urls[key] = reports.url_for(params, target, repo)
            publish_link_url(key, urls[key], f"{run}: {name}", description)
    return urls


def publish_drift_report(
    repo: Path, params: Params, run: str, batch: str, html: Path
) -> str | None:
    """The monitor's Evidently report for one batch, copied to this run's folder, linked;
    returns its address (None when there is no report)."""
    from retrain.orchestration import reports

    copies = reports.publish(params, run, {f"{batch}/drift.html": html})
    if not copies:
        return None
    url = reports.url_for(params, next(iter(copies.values())), repo)
    publish_link_url("drift-report", url, f"{run}: {batch}", f"Drift report of {batch}")
    return url


# The predict output's columns per task (retrain.scoring): binary `probability` and `label`;
# multiclass `predicted_class` and one `probability_<class>` per class; regression
# `prediction` and its interval (`interval_lower`, `interval_upper` at `interval_level`).
PREDICTED_CLASS, PREDICTION = "predicted_class", "prediction"
LOWER, UPPER, LEVEL = "interval_lower", "interval_upper", "interval_level"
QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


def _histogram(values: Any, low: float, high: float, name: str, digits: int) -> list[str]:
    import numpy as np

    counts, edges = np.histogram(values, bins=10, range=(low, high))
    lines = [f"| {name} | rows |", "|---|---:|"]
    return lines + [
        f"| {lo:.{digits}f}-{hi:.{digits}f} | {n} |"
        for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=True)
    ]


def _quantiles(values: Any, what: str) -> str:
    import numpy as np

    shown = np.quantile(values, QUANTILES) if len(values) else []
    return f"- {what} quantiles (min, 10%, 25%, median, 75%, 90%, max): " + ", ".join(
        f"{q:.4f}" for q in shown
    )


def _binary_summary(scored: Any, task: Task) -> list[str]:
    p = scored["probability"].to_numpy()
    share = float(scored["label"].mean()) if len(scored) else 0.0
    return [
        f"- predicted positive: {share:.2%} (label 1 at the model's decision threshold)",
        _quantiles(p, "score"),
        "",
        *_histogram(p, 0.0, 1.0, "score", 1),
    ]


def _multiclass_summary(scored: Any, task: Task) -> list[str]:
    """Each class: how many rows it is predicted for, and its mean probability."""
    n = max(len(scored), 1)
    predicted = scored[PREDICTED_CLASS].astype(str).value_counts()
    rows = [
        f"| {c} | {int(predicted.get(str(c), 0))} | {predicted.get(str(c), 0) / n:.2%} | "
        f"{float(scored[f'probability_{c}'].mean()) if len(scored) else 0.0:.4f} |"
        for c in task.classes
    ]
    return [
        f"- predicted class: the most probable of {len(task.classes)} classes",
        "",
        "| class | predicted for | share | mean probability |",
        "|---|---:|---:|---:|",
        *rows,
    ]


def _regression_summary(scored: Any, task: Task) -> list[str]:
    """The predicted values' spread, and the interval that comes with each."""
    values = scored[PREDICTION].to_numpy(dtype=float)
    lines = [_quantiles(values, "predicted value")]
    if len(scored) and {LOWER, UPPER, LEVEL} <= set(scored.columns):
        width = float((scored[UPPER] - scored[LOWER]).mean()) / 2
        level = float(scored[LEVEL].iloc[0])
        lines.append(f"- interval: value ± {width:.4f} ({level:.0%} prediction interval)")
    low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    return [*lines, "", *_histogram(values, low, high, "predicted value", 2)]


SUMMARIES = {
    "binary": _binary_summary,
    "multiclass": _multiclass_summary,
    "regression": _regression_summary,
}


def predictions_markdown(
    scored: Any, out: Path, model: str, head: int = 5, task: Task | None = None
) -> str:
    """A batch's predictions at a glance: rows, what was predicted (binary: positive share
    and score distribution; multiclass: rows per predicted class; regression: the values'
    spread and interval), the first rows. `task` defaults to binary."""
    task = task or BinaryTask(["positive"])
    lines = [
        f"## {len(scored)} rows scored by {model}",
        "",
        f"- written to `{out}`",
        *SUMMARIES[task.kind](scored, task),
    ]
    first = scored.head(head)
    cols = list(first.columns)
    lines += ["", "First rows:", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in first.iterrows():
        cells = [
            f"{v:.4f}" if isinstance(v, float) else f"`{v}`" if "@" in str(v) else str(v)
            for v in row.tolist()
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
