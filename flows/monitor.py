"""Flow `monitor`: ingest every landed batch, check drift, and retrain when the gate trips.

For each complete file in paths.landing (NAME with its NAME.done marker; see
retrain.ingest): validate it; a rejected batch goes to
quarantine with its report; an accepted one is versioned with DVC, then compared with the
training reference (Evidently: per-column data drift, the production model's predictions and
the labels or target values when present, each of the task's kind); the production model
is the registry's prod version (before the first promotion, the workspace model). Then the
same check runs on real traffic: the rows `retrain serve` logged since the last run. When
any drift gate tripped, ONE retrain is started with reason "drift" and a `drift` parameter
naming every batch and signal that tripped (see retrain.monitoring.trigger), unless a drift
retrain started earlier is still to run; the run's final state names every outcome.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.states import State

from retrain.config import Params
from retrain.history.publish import publish_history
from retrain.ingest import IngestRun, ingest_landing, landed_files
from retrain.monitoring import agreement
from retrain.monitoring.trigger import retrain_request
from retrain.orchestration import artifacts, deployments, notify, runview
from retrain.project import Project
from retrain.registry.serving import NoProdModel, ServedModel, prod_model

RETRAIN_DEPLOYMENT = "retrain/retrain"


@task(task_run_name="ingest")
def ingest(params: Params) -> IngestRun:
    """Every complete landed entry, each on its own (see retrain.ingest)."""
    run = ingest_landing(params, say=get_run_logger().warning)  # a wait is in the run's log
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
    files = (model.preprocessor, model.onnx) if model else None
    label = model.label if model else "workspace"
    summary = agreement.check_landed(batch, params, files, label)
    page = agreement.monitor_folder(params, batch) / agreement.MONITOR_PAGE
    summary["report"] = artifacts.publish_drift_report(repo, params, run, batch.stem, page)
    artifacts.publish_markdown("drift-summary", artifacts.drift_markdown(summary), batch.name)
    if summary["gate"]["tripped"]:
        reasons = "; ".join(summary["gate"]["reasons"])
        get_run_logger().warning("drift gate tripped on %s: %s", batch.name, reasons)
        notify.emit("drift.tripped", batch=batch.name, outcome=f"drift gate tripped: {reasons}")
    return summary


@task(task_run_name="canary-{batch.name}")
def check_canary(
    batch: Path, params: Params, repo: Path, model: ServedModel | None, held: Path | None = None
) -> dict[str, Any] | None:
    """What the batch's labels say of each version the service ran (a canary beside prod),
    each on its own traffic; None when it labels no row a canary scored. `held`: the batch's
    rows ingest held out for the gate (ingest.holdout_share), whose labels count too."""
    from retrain.ingest.holdout import landed_rows
    from retrain.monitoring import canary
    from retrain.registry import versions
    from retrain.serve.log import read_log

    logged = read_log(params.paths.predictions_log)
    if logged.empty:
        return None
    cand = versions.in_stage(repo, params.registry.model_name, params.serve.canary_stage)
    prod = model.version.version if model else None
    found = canary.evaluate(
        landed_rows(batch, held), logged, params.dataset, prod, cand.version if cand else None
    )
    if found is not None:
        get_run_logger().info("%s: %s", batch.name, found["said"])
        report = canary.markdown(batch.name, found, params.dataset.task)
        artifacts.publish_markdown("canary", report, batch.name)
    return found


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
def trigger_retrain(
    batches: list[dict[str, Any]], traffic: dict[str, Any] | None, monitor: str
) -> dict[str, Any]:
    """Start one retrain for every signal of this run, without waiting for it; none when a
    drift retrain started by an earlier monitor run is still scheduled, pending or running.

    Such a run has not read the data pin yet, or took the project lock after this run's
    ingest (which waits for the lock): either way it trains on these batches.
    """
    logger = get_run_logger()
    active = deployments.active_runs(RETRAIN_DEPLOYMENT, reason="drift")
    if active:
        found = active[0]
        logger.warning(
            "drift: no new retrain, %s (%s) is still %s",
            found.name,
            found.flow_run_id,
            found.state,
        )
        return {**asdict(found), "started": False}
    this = {"id": runview.current_flow_run_id() or "", "name": monitor}
    drift = retrain_request(batches, traffic, this)
    run = deployments.start(
        RETRAIN_DEPLOYMENT, {"reason": "drift", "drift": drift}, tags=[f"monitor:{monitor}"]
    )
    logger.warning(
        "drift on %s: retrain %s (%s) started", drift["batch"], run.name, run.flow_run_id
    )
    return {**asdict(run), "started": True}


@flow(name="monitor", log_prints=True, flow_run_name="monitor")
def monitor_flow(repo: str = ".", trigger: bool = True) -> State[Any]:
    """Process the landing folder; its result is one record per batch.

    The run is named `monitor-<first batch>` (`+N` more) and ends in a COMPLETED state named
    by its outcomes (`Batch rejected`, `Drift: retrain started` or `... pending`, `Drift`,
    joined by " + "; else `No drift` or `No batch`), its message naming each batch, signal
    and retrain (retrain.orchestration.runview.monitor_outcome).

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
    records, tripped = [], []
    ingested = ingest(params)
    logger.info(ingested.summary())
    for result in ingested.results:
        file = Path(result.source)
        record: dict[str, Any] = result.to_dict()
        logger.info("%s: %s (%s)", file.name, result.status, result.reason)
        if result.status == "accepted" and result.destination:
            summary = check_drift(Path(result.destination), params, model, folder, root)
            record["drift"] = summary["gate"]
            if summary["gate"]["tripped"]:
                tripped.append((record, summary))
            held = Path(result.holdout) if result.holdout else None
            evidence = check_canary(Path(result.destination), params, root, model, held)
            if evidence is not None:  # labels for rows a canary scored
                record["canary"] = evidence
        records.append(record)
    traffic = check_traffic(params, model)
    if traffic is not None:  # prediction drift on real traffic (the service's log)
        record = {k: traffic[k] for k in ("source", "batch")}
        record.update(status="traffic", drift=traffic["gate"])
        artifacts.publish_markdown("traffic-drift", artifacts.drift_markdown(traffic), "traffic")
        if traffic["gate"]["tripped"]:
            tripped.append((record, traffic))
        records.append(record)
    retrain = None
    if tripped and trigger:  # one retrain for every signal of the run
        batches = [summary for record, summary in tripped if record["status"] != "traffic"]
        on_traffic = traffic if traffic is not None and traffic["gate"]["tripped"] else None
        retrain = trigger_retrain(batches, on_traffic, run)
        for record, _ in tripped:
            record["retrain_run"] = retrain["flow_run_id"]
    name, message, warn, tags = runview.monitor_outcome(records, retrain)
    runview.add_tags(tags)
    publish_history(project)  # the model history page (drift over time) and its artifacts
    return runview.final_state(name, message, records, warn, logger)


if __name__ == "__main__":
    # `python flows/monitor.py [repo] [--trigger]`: one pass over the landing folder here;
    # --trigger starts the retrain deployment on drift (it needs the stack's deployments).
    import sys

    args = [a for a in sys.argv[1:] if a != "--trigger"]
    monitor_flow(repo=args[0] if args else ".", trigger="--trigger" in sys.argv)
