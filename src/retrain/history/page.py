"""The model history page: every retrain as a table and a metric-over-time chart, and the
drift of every column over the monitored batches. One static HTML file with its CSS and
SVG inline: it opens offline, from disk or from the stack's reports server."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from retrain.config import Params
from retrain.files import write_text
from retrain.history.chart import Series, line_chart
from retrain.history.table import HEADER, HistoryRow, cells, direction, history

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.rejected td { background: #fff4e5; } tr.promoted td { background: #eefaf0; }
td.drifted { background: #f8d7da; font-weight: 600; }
.wrap { overflow-x: auto; } .note { color: #555; }
"""
NUMERIC = {"ours", "logreg", "lightgbm", "ours (holdout)", "champion (holdout)"}


@dataclass(frozen=True)
class DriftPoint:
    """One monitored batch (or traffic window): its per-column drift scores."""

    name: str
    when: str
    share: float | None
    columns: dict[str, tuple[float, bool]]  # column -> (score, drifted)
    # The model's prediction and the target, as the task compares them ("prediction: model
    # score", "target: wage"): after the feature columns, since they are not counted in the
    # share.
    signals: dict[str, tuple[float, bool]] = field(default_factory=dict)


def drift_points(monitor_dir: Path) -> list[DriftPoint]:
    """Every monitor drift summary under `monitor_dir` (batches, traffic windows), oldest
    first by when it was written."""
    if not monitor_dir.is_dir():
        return []
    found = sorted(monitor_dir.rglob("drift.json"), key=lambda p: p.stat().st_mtime)
    points = []
    for path in found:
        summary: dict[str, Any] = json.loads(path.read_text())
        features = summary.get("features") or {}
        columns = {
            name: (float(c["score"]), bool(c["drifted"]))
            for name, c in features.items()
            if isinstance(c, dict) and "score" in c
        }
        signals = {
            f"{role}: {c['column']}": (float(c["score"]), bool(c["drifted"]))
            for role in ("prediction", "target")
            if isinstance(c := summary.get(role), dict) and "score" in c
        }
        when = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M")
        name = str(summary.get("batch") or path.parent.name)
        points.append(DriftPoint(name, when, summary.get("share_drifted"), columns, signals))
    return points


def _row_html(r: HistoryRow) -> str:
    out = []
    for head, text in zip(HEADER, cells(r), strict=True):
        body = escape(text)
        if head == "trigger" and r.trigger_url:
            body = f'<a href="{escape(r.trigger_url)}">{body}</a>'
        cls = ' class="num"' if head in NUMERIC else ""
        out.append(f"<td{cls}>{body}</td>")
    kind = "promoted" if r.promoted else ("rejected" if r.decision == "rejected" else "")
    return f'<tr class="run {kind}" data-run="{escape(r.run_id)}">' + "".join(out) + "</tr>"


def runs_section(rows: list[HistoryRow]) -> str:
    """The table of retrains and the chart of the gate's metric over them."""
    if not rows:
        return "<p>No recorded retrain yet (a retrain writes one: tag run/&lt;run-id&gt;).</p>"
    metric = rows[0].metric
    labels = [f"{r.model} {r.finished_at[5:16]}" for r in rows]  # unique per version
    series = [
        Series("ours (test)", [r.ours for r in rows]),
        Series("logreg (test)", [r.logreg for r in rows]),
        Series("lightgbm (test)", [r.lightgbm for r in rows]),
        Series("ours (holdout)", [r.holdout_ours for r in rows]),
        Series("champion (holdout)", [r.holdout_champion for r in rows]),
    ]
    head = "".join(f"<th>{escape(h)}</th>" for h in HEADER)
    body = "".join(_row_html(r) for r in rows)
    return (
        f"<h2>{escape(metric)} over time ({direction(metric)})</h2>"
        + line_chart(labels, series, f"{metric}, {direction(metric)}")
        + "<p class='note'>ours and baselines: the test split of each run's data; holdout: "
        "the gate's, where the new model and the champion are scored on the same rows.</p>"
        + f"<h2>Every retrain</h2><div class='wrap'><table id='runs'><thead><tr>{head}</tr>"
        + f"</thead><tbody>{body}</tbody></table></div>"
    )


def drift_section(points: list[DriftPoint]) -> str:
    """Per column, its drift score on each monitored batch (drifted cells marked)."""
    if not points:
        return "<h2>Drift over time</h2><p>No monitored batch yet.</p>"
    columns = sorted({c for p in points for c in p.columns})
    columns += sorted({c for p in points for c in p.signals})
    chart = line_chart(
        [p.name for p in points],
        [Series("share drifted", [p.share for p in points])],
        "share drifted",
    )
    head = "<th>column</th>" + "".join(
        f"<th>{escape(p.name)}<br><small>{escape(p.when)}</small></th>" for p in points
    )
    rows = []
    for col in columns:
        tds = []
        for p in points:
            score, drifted = p.columns.get(col) or p.signals.get(col) or (None, False)
            text = "-" if score is None else f"{score:.4f}" + (" drifted" if drifted else "")
            tds.append(f"<td class='num{' drifted' if drifted else ''}'>{text}</td>")
        rows.append(f'<tr class="drift" data-column="{escape(col)}"><td>{escape(col)}</td>')
        rows[-1] += "".join(tds) + "</tr>"
    return (
        "<h2>Drift over time</h2>" + chart + "<p class='note'>Per column, the drift test's "
        "score on each batch the monitor checked (Evidently; a marked cell drifted); then the "
        "model's prediction and the target, each compared as its task's kind.</p>"
        f"<div class='wrap'><table id='drift'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def render(rows: list[HistoryRow], points: list[DriftPoint], title: str) -> str:
    """The whole page."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1><p class='note'>{len(rows)} retrains; written {now}.</p>"
        + runs_section(rows)
        + drift_section(points)
        + "</body></html>\n"
    )


def write_page(root: Path, params: Params) -> Path:
    """Build the page from the records and the monitor's reports; write it to
    paths.model_history (atomically: the reports server never serves half of it)."""
    rows = history(root, params)
    points = drift_points(params.paths.monitor_dir)
    title = f"Model history: {params.registry.model_name}"
    return write_text(params.paths.model_history, render(rows, points, title))
