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

from retrain.config import Params, load_params_at
from retrain.data.io import read_file
from retrain.ingest import IngestRun, ingest_landing
from retrain.orchestration import artifacts
from retrain.registry.serving import NoProdModel, ServedModel, prod_model
from retrain.stages.drift import batch_drift

RETRAIN_DEPLOYMENT = "retrain/retrain"


@task
def ingest(params: Params) -> IngestRun:
    return ingest_landing(params)


@task(task_run_name="drift {batch.name}")
def check_drift(batch: Path, params: Params, model: ServedModel | None) -> dict[str, Any]:
    out = params.paths.monitor_dir / batch.stem
    files = (model.preprocessor, model.onnx) if model else None
    summary = {
        "batch": batch.name,
        "model": model.label if model else "workspace",
        **batch_drift(read_file(batch), params, out / "drift.html", files),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "drift.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


@task
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


@task(retries=2, retry_delay_seconds=5)
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


@flow(name="monitor", log_prints=True)
def monitor_flow(repo: str = ".", trigger: bool = True) -> list[dict[str, Any]]:
    """Process the landing folder; returns one record per batch.

    Args:
        repo: the project checkout.
        trigger: start the retrain deployment when the drift gate trips.
    """
    logger = get_run_logger()
    params = load_params_at(repo)
    try:
        model: ServedModel | None = prod_model(Path(repo).resolve(), params)
    except NoProdModel:
        model = None  # nothing promoted yet: the workspace model is all there is
    records = []
    run = ingest(params)
    logger.info(run.summary())
    for result in run.results:
        file = Path(result.source)
        record: dict[str, Any] = result.to_dict()
        logger.info("%s: %s (%s)", file.name, result.status, result.reason)
        if result.status in ("rejected", "refused"):
            artifacts.publish_markdown(
                "rejected-batch",
                f"## Rejected `{file.name}`\n\n{result.reason}\n\n"
                f"Kept in `{result.destination}` with its report.",
                file.name,
            )
        if result.status == "accepted" and result.destination:
            summary = check_drift(Path(result.destination), params, model)
            record["drift"] = summary["gate"]
            artifacts.publish_markdown(
                "drift-summary", artifacts.drift_markdown(summary), file.name
            )
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
    return records
