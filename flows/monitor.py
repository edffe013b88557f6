"""Flow `monitor`: ingest every landed batch, check drift, and retrain when the gate trips.

For each complete file in paths.landing (NAME with its NAME.done marker; see
retrain.ingest): validate it; a rejected batch goes to
quarantine with its report; an accepted one is versioned with DVC, then compared with the
training reference (Evidently: per-column data drift, the production model's scores, labels
when present); the production model is the registry's prod version (before the first
promotion, the workspace model). When the drift gate trips, the retrain deployment is started
with reason "drift" and the drift summary; otherwise a passing summary is recorded.
Then the same check runs on real traffic: the rows `retrain serve` logged since the last run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.states import State

from retrain.config import Params
from retrain.data.io import read_file
from retrain.history.publish import publish_history
from retrain.ingest import IngestRun, ingest_landing, landed_files
from retrain.monitoring.drift import batch_drift
from retrain.orchestration import artifacts, notify, runview
from retrain.project import Project
from retrain.registry.serving import NoProdModel, ServedModel, prod_model

RETRAIN_DEPLOYMENT = "retrain/retrain"


@task(task_run_name="ingest")
def ingest(params: Params) -> IngestRun:
    """Every complete landed entry, each on its own (see retrain.ingest)."""
    run = ingest_landing(params)
    for result in run.results:
        if result.status not in ("rejected", "refused"):
            continue
        name = Path(result.source).name
        get_run_logger().warning("batch %s rejected: %s", name, result.reason)
        notify.emit("batch.rejected", batch=name, outcome=f"rejected: {result.reason}")
        artifacts.publish_markdown(
            "rejected-batch",
            f"## Rejected `{name}`\n\n{result.reason}\n\n"
            f"Kept in `{result.destination}` with its report.",
            name,
        )
    return run


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


@task(task_run_name="check-traffic")
def check_traffic(params: Params, model: ServedModel | None) -> dict[str, Any] | None:
    """Drift of the rows `retrain serve` scored since the last check (None: too few)."""
    from datetime import UTC, datetime

    from retrain.monitoring.traffic import traffic_drift

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return traffic_drift(
        params,
        (model.preprocessor, model.onnx) if model else None,
        model.version.version if model else None,
        params.paths.monitor_dir / "traffic" / stamp,
    )


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
    project = Project.load(repo)
    root, params = project.root, project.params
    files = landed_files(params)
    if not files:
        logger.info("no new batch in %s", params.paths.landing)
    run = runview.monitor_run_name([f.name for f in files])
    runview.name_run(run)
    folder = runview.stamped(run)  # this run's reports (paths.run_reports/<folder>)
    try:
        model: ServedModel | None = prod_model(root, params)
    except NoProdModel:
        model = None  # nothing promoted yet: the workspace model is all there is
    records = []
    ingested = ingest(params)
    logger.info(ingested.summary())
    for result in ingested.results:
        file = Path(result.source)
        record: dict[str, Any] = result.to_dict()
        logger.info("%s: %s (%s)", file.name, result.status, result.reason)
        if result.status == "accepted" and result.destination:
            summary = check_drift(Path(result.destination), params, model, folder, root)
            record["drift"] = summary["gate"]
            if summary["gate"]["tripped"] and trigger:
                record["retrain_run"] = trigger_retrain(summary)
        records.append(record)
    traffic = check_traffic(params, model)
    if traffic is not None:  # prediction drift on real traffic (the service's log)
        record = {"source": traffic["source"], "status": "traffic", "drift": traffic["gate"]}
        artifacts.publish_markdown("traffic-drift", artifacts.drift_markdown(traffic), "traffic")
        if traffic["gate"]["tripped"] and trigger:
            record["retrain_run"] = trigger_retrain(traffic)
        records.append(record)
    name, message, warn, tags = runview.monitor_outcome(records)
    runview.add_tags(tags)
    publish_history(project)  # the model history page (drift over time) and its artifacts
    return runview.final_state(name, message, records, warn, logger)


if __name__ == "__main__":
    # `python flows/monitor.py [repo] [--trigger]`: one pass over the landing folder here;
    # --trigger starts the retrain deployment on drift (it needs the stack's deployments).
    import sys

    args = [a for a in sys.argv[1:] if a != "--trigger"]
    monitor_flow(repo=args[0] if args else ".", trigger="--trigger" in sys.argv)
