"""Flow `monitor`: ingest every landed batch, check drift, and retrain when the gate trips.

For each file in paths.landing (in name order): validate it; a rejected batch goes to
quarantine with its report; an accepted one is versioned with DVC, then compared with the
training reference (Evidently: per-column data drift, the production model's scores, labels
when present); the production model is the registry's prod version (before the first
promotion, the workspace model). When the drift gate trips, the retrain deployment is started
with reason "drift" and the drift summary; otherwise a passing summary is recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.states import State

from retrain.config import Params, load_params_at
from retrain.data.io import SUFFIXES, read_file
from retrain.ingest import IngestResult, ingest_file
from retrain.orchestration import artifacts, notify, runview
from retrain.registry.serving import NoProdModel, ServedModel, prod_model
from retrain.stages.drift import batch_drift

RETRAIN_DEPLOYMENT = "retrain/retrain"


@task(task_run_name="ingest-{file.name}")
def ingest(file: Path, params: Params) -> IngestResult:
    result = ingest_file(file, params)
    if result.status == "rejected":
        get_run_logger().warning("batch %s rejected: %s", file.name, result.reason)
        notify.emit("batch.rejected", batch=file.name, outcome=f"rejected: {result.reason}")
        artifacts.publish_markdown(
            "rejected-batch",
            f"## Rejected `{file.name}`\n\n{result.reason}\n\n"
            f"Kept in `{result.destination}` with its report.",
            file.name,
        )
    return result


@task(task_run_name="drift-{batch.name}")
def check_drift(
    batch: Path, params: Params, model: ServedModel | None, run: str, repo: Path
) -> dict[str, Any]:
    """Drift of the batch; its summary and a link to its Evidently report on this task."""
    out = params.paths.monitor_dir / batch.stem
    files = (model.preprocessor, model.onnx) if model else None
    summary = {
        "batch": batch.name,
        "model": model.label if model else "workspace",
        **batch_drift(read_file(batch), params, out / "drift.html", files),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "drift.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    artifacts.publish_markdown("drift-summary", artifacts.drift_markdown(summary), batch.name)
    artifacts.publish_drift_report(repo, params, run, batch.stem, out / "drift.html")
    if summary["gate"]["tripped"]:
        reasons = "; ".join(summary["gate"]["reasons"])
        get_run_logger().warning("drift gate tripped on %s: %s", batch.name, reasons)
        notify.emit("drift.tripped", batch=batch.name, outcome=f"drift gate tripped: {reasons}")
    return summary


@task(task_run_name="trigger-retrain", retries=2, retry_delay_seconds=5)
def trigger_retrain(summary: dict[str, Any]) -> str:
    """Start the retrain deployment without waiting for it (it is a run of its own)."""
    from prefect.deployments import run_deployment

    run = run_deployment(
        RETRAIN_DEPLOYMENT,
        parameters={"reason": "drift", "drift": artifacts.drift_digest(summary)},
        timeout=0,
        as_subflow=False,
    )
    return str(run.id)


@flow(name="monitor", log_prints=True, flow_run_name="monitor")
def monitor_flow(repo: str = ".", trigger: bool = True) -> State[Any]:
    """Process the landing folder; its result is one record per batch.

    The run is named `monitor-<first batch>` (`+N` more) and ends in a COMPLETED state named
    `Batch rejected`, `Drift: retrain started`, `Drift` or `No drift`.

    Args:
        repo: the project checkout.
        trigger: start the retrain deployment when the drift gate trips.
    """
    logger = get_run_logger()
    params = load_params_at(repo)
    landing = params.paths.landing
    files = sorted(p for p in landing.glob("*") if p.is_file() and p.suffix in SUFFIXES)
    if not files:
        logger.info("no new batch in %s", landing)
    root = Path(repo).resolve()
    run = runview.monitor_run_name([f.name for f in files])
    runview.name_run(run)
    folder = runview.stamped(run)  # this run's reports (paths.run_reports/<folder>)
    try:
        model: ServedModel | None = prod_model(Path(repo).resolve(), params)
    except NoProdModel:
        model = None  # nothing promoted yet: the workspace model is all there is
    records = []
    for file in files:
        result = ingest(file, params)
        record: dict[str, Any] = result.to_dict()
        logger.info("%s: %s (%s)", file.name, result.status, result.reason)
        if result.status == "accepted" and result.destination:
            summary = check_drift(Path(result.destination), params, model, folder, root)
            record["drift"] = summary["gate"]
            if summary["gate"]["tripped"] and trigger:
                record["retrain_run"] = trigger_retrain(summary)
        records.append(record)
    name, message, warn, tags = runview.monitor_outcome(records)
    runview.add_tags(tags)
    return runview.final_state(name, message, records, warn, logger)
