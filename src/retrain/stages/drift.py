"""Stage `drift`: the training reference against the batch ingest accepted last (arrival
order, retrain.data.arrivals: the batch the monitor checked last, whatever the names' sort
order), so `dvc repro` shows drift too. Writes Evidently's HTML for people and a JSON of named
fields for machines. When the monitor checked that batch as it landed, the page opens on its
number beside this one, and why they differ (retrain.monitoring.agreement).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from retrain.config import Params
from retrain.data.arrivals import newest_batch
from retrain.data.io import read_file
from retrain.files import write_json
from retrain.markdown import html_page
from retrain.monitoring.agreement import after_summary, batch_rows_in, comparison, monitor_check
from retrain.monitoring.drift import batch_drift
from retrain.stages._common import stage_main

# Before the first batch there is nothing to compare: the page says so, and how to get one.
NO_BATCH = (
    '<section id="drift-summary"><h1>Drift report: no batch ingested yet</h1>'
    "<p>Drift compares the training data with the newest ingested batch, and no batch has been "
    "ingested yet. Put a batch in <code>paths.landing</code> and run <code>retrain ingest</code> "
    "(the monitor flow does both); this page then opens on the drift gate's verdict.</p>"
    "</section>"
)


def newest_ingested(params: Params) -> Path | None:
    """The batch ingest accepted last (its arrival order, retrain.data.arrivals): the one the
    monitor checked last, whatever the names' sort order."""
    return newest_batch(params.paths.batches)


def show_the_monitors_check(
    params: Params, batch: Path, table: pd.DataFrame, summary: dict[str, Any]
) -> None:
    """The monitor's number for this batch beside this stage's, on the page (not in the JSON:
    the monitor's reports are not an input of the stage, so a replay could not repeat it)."""
    monitor = monitor_check(params, batch)
    if monitor is None:
        return
    held = batch_rows_in(pd.read_parquet(params.paths.train), table, params.dataset.id_column)
    page = params.paths.drift_html
    block = comparison(monitor, summary, held, len(table))
    page.write_text(after_summary(page.read_text(), block))


def run(params: Params) -> dict[str, Any]:
    paths = params.paths
    batch = newest_ingested(params)
    if batch is None:
        summary: dict[str, Any] = {"batch": None, "gate": {"tripped": False, "reasons": []}}
        paths.drift_html.parent.mkdir(parents=True, exist_ok=True)
        paths.drift_html.write_text(html_page("Drift report", NO_BATCH))
    else:
        table = read_file(batch)
        summary = {"batch": batch.name, **batch_drift(table, params, paths.drift_html)}
        show_the_monitors_check(params, batch, table, summary)
    write_json(paths.drift_report, summary)
    gate = summary["gate"]
    print(
        f"drift: {summary['batch'] or 'no batch'}: "
        + ("; ".join(gate["reasons"]) or "gate passed")
    )
    return summary


def main() -> None:
    stage_main("drift", run)


if __name__ == "__main__":
    main()
