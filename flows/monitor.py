"""Flow `monitor`: score the newest batch with the production model and check for drift.

Today's check is prediction drift (KS test on the model's scores against its scores on the
test split). Per-column data drift with Evidently and the retrain trigger arrive with the
drift milestone; this flow, its daily deployment and its artifacts are where they land.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from retrain.config import load_params
from retrain.data.io import read_table
from retrain.orchestration import artifacts
from retrain.scoring import newest_batch, score_drift, score_frame
from retrain.validation.suite import validate_frame


@task
def validate_batch(batch: Path, params_file: Path) -> dict[str, Any]:
    params = load_params(params_file)
    result = validate_frame(
        read_table(batch),
        params.dataset.suite,
        str(batch),
        optional_columns=[params.dataset.target],
    )
    return result.to_dict()


@task
def check_drift(batch: Path, params_file: Path, out_dir: Path) -> dict[str, Any]:
    params = load_params(params_file)
    scored = score_frame(read_table(batch), params)
    out_dir.mkdir(parents=True, exist_ok=True)
    scored.to_parquet(out_dir / "predictions.parquet", index=False)
    return score_drift(scored["probability"].to_numpy(), params)


@flow(name="monitor", log_prints=True)
def monitor_flow(batch: str | None = None, repo: str = ".") -> dict[str, Any]:
    """Validate and score a batch (default: the newest file in paths.landing).

    Args:
        batch: the batch file; None picks the newest in the landing folder.
        repo: the project checkout.
    """
    logger = get_run_logger()
    root = Path(repo).resolve()
    params_file = root / "params.yaml"
    params = load_params(params_file)
    path = Path(batch) if batch else newest_batch(root / params.paths.landing)
    out_dir = root / params.paths.monitor_dir / path.stem
    validation = validate_batch(path, params_file)
    artifacts.publish_markdown(
        "monitor-validation",
        artifacts.validation_markdown({"tables": [validation]}),
        f"Validation of {path.name}",
    )
    if not validation["success"]:
        raise RuntimeError(validation["headline"])
    summary = check_drift(path, params_file, out_dir)
    summary.update(batch=path.name, validation=validation["headline"])
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    artifacts.publish_markdown("drift-summary", artifacts.drift_markdown(summary), path.name)
    logger.info("batch %s: %s", path.name, "drift" if summary["drift"] else "no drift")
    return summary
