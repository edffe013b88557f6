"""One row per recorded retrain, read from the records (`registry.record.list_runs`) and
the evaluate metrics each record's commit holds (the baselines are not in the record)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from retrain.config import Params
from retrain.infra.git import show
from retrain.markdown import table
from retrain.model_key import OLD_KEY, OURS
from retrain.project import rel
from retrain.registry import record
from retrain.task import HIGHER_IS_BETTER

# Our model's key in metrics/evaluate.json and the plot files: `tabm` since the rename, `mlp`
# in a run recorded before it (retrain.model_key).
MODEL_KEYS = (OURS, OLD_KEY)
BASELINES = ("logreg", "lightgbm")


def ours(metrics: dict[str, Any]) -> dict[str, Any]:
    """Our model's metrics in an evaluate.json, under whichever key it was written."""
    for key in MODEL_KEYS:
        if isinstance(metrics.get(key), dict):
            return dict(metrics[key])
    return {}


@dataclass(frozen=True)
class HistoryRow:
    """One retrain, every number the history shows (None: not measured)."""

    run_id: str
    tag: str
    finished_at: str
    reason: str
    trigger: str  # what started it: a drift's batches, or empty
    trigger_url: str | None  # the monitor run that started it, in the Prefect UI
    data: str  # the raw data's DVC hash (short) and how many batches it holds
    model: str  # the registered version
    promoted: bool
    metric: str  # the gate's metric (roc_auc, log_loss, rmse: retrain.task)
    ours: float | None  # on the test split (evaluate stage)
    logreg: float | None
    lightgbm: float | None
    holdout_ours: float | None  # on the gate's holdout, beside the champion
    holdout_champion: float | None
    champion: str | None  # the version it was compared with
    decision: str
    why: str


def _trigger(rec: dict[str, Any], ui_url: str | None) -> tuple[str, str | None]:
    trig = rec.get("trigger") or {}
    if not trig:
        return "", None
    text = f"drift on {trig.get('batch') or '?'}"
    monitor = trig.get("monitor_run") or {}
    if isinstance(monitor, dict) and monitor.get("name"):
        text += f" (monitor run {monitor['name']})"
    run_id = monitor.get("id") if isinstance(monitor, dict) else None
    url = f"{ui_url}/runs/flow-run/{run_id}" if ui_url and run_id else None
    return text, url


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def row(rec: dict[str, Any], evaluate: dict[str, Any], ui_url: str | None = None) -> HistoryRow:
    """The history's row for record `rec`, with `evaluate` its commit's evaluate metrics."""
    gate, model = rec["gate"], rec["model"]
    metric = gate["metric"]
    text, url = _trigger(rec, ui_url)
    data = rec.get("data", {})
    batches = len(data.get("batches") or [])
    return HistoryRow(
        run_id=rec["run_id"],
        tag=rec.get("tag", f"run/{rec['run_id']}"),
        finished_at=rec["finished_at"][:19].replace("T", " "),
        reason=rec["reason"],
        trigger=text,
        trigger_url=url,
        data=f"{str(data.get('md5', ''))[:8]} +{batches} batches",
        model=model.get("version") or "-",
        promoted=bool(model.get("promoted")),
        metric=metric,
        ours=_num(ours(evaluate).get(metric, rec["metrics"].get(metric))),
        logreg=_num(evaluate.get("logreg", {}).get(metric)),
        lightgbm=_num(evaluate.get("lightgbm", {}).get(metric)),
        holdout_ours=_num((gate.get("challenger") or {}).get(metric)),
        holdout_champion=_num((gate.get("champion") or {}).get(metric)),
        champion=(rec.get("champion") or {}).get("version"),
        decision=gate["decision"],
        why="; ".join(gate.get("reasons") or []),
    )


def ui_url(root: Path) -> str | None:
    """The Prefect UI's address: PREFECT_UI_URL, else the running stack's state file."""
    url = os.environ.get("PREFECT_UI_URL")
    state = root / ".prefect" / "stack.json"
    if not url and state.exists():
        url = json.loads(state.read_text()).get("ui_url")
    return str(url).rstrip("/") if url else None


def history(root: Path, params: Params) -> list[HistoryRow]:
    """Every recorded retrain, oldest first."""
    metrics_rel = rel(root, params.paths.metrics)
    url = ui_url(root)
    rows = []
    for rec in record.list_runs(root, params):
        text = show(root, rec["commit"], metrics_rel)
        rows.append(row(rec, json.loads(text) if text else {}, url))
    return rows


def direction(metric: str) -> str:
    """ "higher is better" or "lower is better": how to read `metric` over time."""
    return "higher is better" if HIGHER_IS_BETTER.get(metric, True) else "lower is better"


def fmt(value: float | None) -> str:
    """Four decimals, trailing zeros kept (a column of numbers lines up); '-' for none."""
    return "-" if value is None else f"{value:.4f}"


HEADER = (
    "run",
    "finished (UTC)",
    "reason",
    "trigger",
    "data",
    "model",
    "ours",
    "logreg",
    "lightgbm",
    "ours (holdout)",
    "champion (holdout)",
    "decision",
    "why",
)


def cells(r: HistoryRow) -> list[str]:
    """A row's cells in HEADER's order, as text."""
    champion = fmt(r.holdout_champion) + (f" {r.champion}" if r.champion else "")
    return [
        r.run_id,
        r.finished_at,
        r.reason,
        r.trigger or "-",
        r.data,
        r.model,
        fmt(r.ours),
        fmt(r.logreg),
        fmt(r.lightgbm),
        fmt(r.holdout_ours),
        champion,
        r.decision,
        r.why or "-",
    ]


def text_table(rows: list[HistoryRow], prod: str | None = None) -> str:
    """The history as aligned plain text (`retrain runs`); the row of the version in `prod`
    now is marked `<- prod`."""
    metric = rows[0].metric if rows else "metric"
    grid = [list(HEADER)]
    for r in rows:
        line = cells(r)
        if prod and r.model == prod and r.decision != "unchanged":
            line[-1] += "  <- prod"
        grid.append(line)
    widths = [max(len(line[i]) for line in grid) for i in range(len(HEADER) - 1)]
    lines = [
        f"metric: {metric}, {direction(metric)} (ours, baselines: test split; holdout: the gate's)"
    ]
    for line in grid:
        padded = [c.ljust(w) for c, w in zip(line, widths, strict=False)]
        lines.append("  ".join([*padded, line[-1]]))
    return "\n".join(lines) + "\n"


def markdown_table(rows: list[HistoryRow]) -> str:
    """The history as a Markdown table (the Prefect artifact)."""
    metric = rows[0].metric if rows else "metric"
    body = [[c.replace("|", "\\|") for c in cells(r)] for r in rows]
    title = f"## Model history ({metric}, {direction(metric)})"
    lines = [title, "", *table(HEADER, body, "lllllllrrrrll")]
    return "\n".join(lines) + "\n"


def as_dicts(rows: list[HistoryRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
