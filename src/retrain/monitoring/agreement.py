"""One batch, two drift checks, shown side by side with why they differ (issue 28).

The monitor checks a batch as it lands, against the training split of the model it then
has: the batch is not in it. A retrain that drift starts trains on the batch, and its
`drift` stage checks the same batch (the last accepted, in arrival order: retrain.data.arrivals)
against the new training split, which holds most of the batch's rows: another reference, so
another count can come out (7 of 19 columns at the monitor, 4 of 19 in the retrain's report).
Both are right about what they compare; the monitor's is the one its gate acted on. So each
page says what it compared with, and the retrain's page puts the monitor's number beside its
own for the same batch file, with the two references' sizes.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from retrain.config import Params
from retrain.data.io import read_file
from retrain.monitoring.drift import batch_drift, with_summary

MONITOR_CHECK = "drift.json"  # in monitor_folder, for machines
MONITOR_PAGE = "drift.html"  # beside it, for people


def monitor_folder(params: Params, batch: Path) -> Path:
    """Where the monitor keeps its check of an accepted batch: paths.monitor_dir/<stem>/."""
    return params.paths.monitor_dir / batch.stem


def monitor_check(params: Params, batch: Path) -> dict[str, Any] | None:
    """The monitor's drift summary of `batch` (an accepted batch file), if it checked it."""
    path = monitor_folder(params, batch) / MONITOR_CHECK
    return json.loads(path.read_text()) if path.exists() else None


def check_landed(
    batch: Path, params: Params, model: tuple[Any, Any] | None, label: str
) -> dict[str, Any]:
    """The monitor's drift check of an accepted batch, written to its `monitor_folder`
    (drift.json, and drift.html saying what it compared with).

    Args:
        batch: the accepted batch's file.
        params: the project's params.
        model: (preprocessor, ONNX model) of the model in use; None: the workspace model.
        label: that model's name, for the page.
    """
    out = monitor_folder(params, batch)
    page = out / MONITOR_PAGE
    found = batch_drift(read_file(batch), params, page, model)
    page.write_text(after_summary(page.read_text(), monitor_note(found["reference_rows"], label)))
    summary = {"batch": batch.name, "model": label, **found}
    (out / MONITOR_CHECK).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def batch_rows_in(reference: pd.DataFrame, batch: pd.DataFrame, id_column: str | None) -> int:
    """How many of the batch's rows the reference holds, by id (0 without an id column)."""
    if not id_column or id_column not in reference or id_column not in batch:
        return 0
    return int(reference[id_column].isin(set(batch[id_column].dropna())).sum())


def monitor_note(reference_rows: int, model: str) -> str:
    """What the monitor's page says it compared with, and why a retrain's page differs."""
    return (
        '<section id="drift-reference"><p><b>Reference</b>: the training split of the model '
        f"in use when the batch landed ({reference_rows} rows; scores by {escape(model)}), "
        "which does not contain this batch. A retrain run while this is the last batch "
        "accepted trains on it and checks it again against its own training split, which "
        "holds most of the batch's rows, so its count can differ; its drift report shows "
        "both numbers side by side.</p></section>"
    )


def _count(summary: dict[str, Any]) -> str:
    drifted = summary.get("drifted_features") or []
    total = len(summary.get("features") or {})
    return f"{len(drifted)} of {total}: " + (", ".join(drifted) or "none")


def comparison(monitor: dict[str, Any], stage: dict[str, Any], held: int, batch_rows: int) -> str:
    """The retrain's drift page's opening block: the monitor's number beside this one's.

    Args:
        monitor: the monitor's drift summary of the batch (`monitor_check`).
        stage: this drift stage's summary of the same batch.
        held: how many of the batch's rows this stage's reference (training split) holds.
        batch_rows: the batch's rows.
    """
    same = monitor.get("drifted_features") == stage.get("drifted_features")
    rows = [
        ("feature columns drifted", _count(monitor), _count(stage)),
        (
            "reference",
            f"training split before the batch: {monitor.get('reference_rows')} rows, none "
            "from this batch",
            f"this retrain's training split: {stage.get('reference_rows')} rows, {held} of "
            f"them from this batch ({batch_rows} rows)",
        ),
        ("scores by", str(monitor.get("model", "?")), "this run's model"),
        ("drift gate", _gate(monitor), _gate(stage)),
    ]
    cells = "".join(
        f"<tr><th>{escape(a)}</th><td>{escape(b)}</td><td>{escape(c)}</td></tr>"
        for a, b, c in rows
    )
    why = (
        "Both checks agree."
        if same
        else "They differ because they compare the batch with different references: this "
        f"retrain trained on it, so {held} of its {batch_rows} rows are in the reference "
        "here, none in the monitor's. The monitor's number is the one its drift gate acted on."
    )
    name = escape(str(stage.get("batch")))
    return (
        f'<section id="drift-agreement"><h2>{name}, as the monitor saw it and here</h2>'
        "<table><thead><tr><th></th><th>monitor, when the batch landed</th>"
        f"<th>this report</th></tr></thead><tbody>{cells}</tbody></table>"
        f"<p>{escape(why)}</p></section>"
    )


def _gate(summary: dict[str, Any]) -> str:
    gate = summary.get("gate") or {}
    return "tripped" if gate.get("tripped") else "passed"


def after_summary(page: str, block: str) -> str:
    """`block` right after the page's drift summary (its first section), else first."""
    start = page.find('<section id="drift-summary">')
    end = page.find("</section>", start) if start >= 0 else -1
    if end < 0:
        return with_summary(page, block)
    at = end + len("</section>")
    return page[:at] + block + page[at:]
