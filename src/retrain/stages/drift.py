"""Stage `drift`: the training reference against the newest ingested batch, so `dvc repro`
shows drift too. Writes Evidently's HTML for people and a JSON of named fields for machines.
"""

from __future__ import annotations

from typing import Any

from retrain.config import Params
from retrain.data.io import SUFFIXES, read_file
from retrain.files import write_json
from retrain.markdown import html_page
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


def newest_ingested(params: Params) -> Any:
    batches = params.paths.batches
    files = (
        sorted(p for p in batches.glob("*") if p.suffix in SUFFIXES) if batches.exists() else []
    )
    return files[-1] if files else None


def run(params: Params) -> dict[str, Any]:
    paths = params.paths
    batch = newest_ingested(params)
    if batch is None:
        summary: dict[str, Any] = {"batch": None, "gate": {"tripped": False, "reasons": []}}
        paths.drift_html.parent.mkdir(parents=True, exist_ok=True)
        paths.drift_html.write_text(html_page("Drift report", NO_BATCH))
    else:
        summary = {"batch": batch.name, **batch_drift(read_file(batch), params, paths.drift_html)}
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
