"""Flow `retrain`: the DVC pipeline as Prefect tasks, one per stage, in dvc.yaml order.

(The file is retraining.py: a flows/retrain.py would shadow the `retrain` package, since
Prefect puts a flow script's folder first on sys.path.) DVC does the work
(`dvc repro --single-item <stage>`), so dvc.lock records the run and an unchanged stage is
skipped exactly as `dvc repro` would skip it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task

from retrain.config import apply_overrides, load_params
from retrain.orchestration import artifacts
from retrain.orchestration.dvc import run_dvc, stage_names, stage_ran

Reason = Literal["schedule", "drift", "manual"]


@task(task_run_name="{stage}")
def run_stage(repo: Path, stage: str) -> bool:
    """Reproduce one stage through DVC, streaming its log; True when it ran, False if skipped."""
    logger = get_run_logger()
    lines = run_dvc(repo, "repro", "--single-item", stage, on_line=logger.info)
    return stage_ran(lines, stage)


@task(retries=2, retry_delay_seconds=5)
def push(repo: Path) -> None:
    """Send data and models to the DVC remote: the one step that can fail transiently."""
    run_dvc(repo, "push", "-q", on_line=get_run_logger().info)


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def _publish_validation(repo: Path, params_file: Path) -> None:
    paths = load_params(params_file).paths
    summary = _read_json(repo / paths.validation_summary)
    if summary is not None:
        artifacts.publish_markdown(
            "validation-summary", artifacts.validation_markdown(summary), "Great Expectations"
        )
    docs = repo / paths.data_docs / "index.html"
    if docs.exists():
        artifacts.publish_link("data-docs", docs, "Great Expectations Data Docs")


@flow(name="retrain", log_prints=True)
def retraining_flow(
    dataset: str = "telco_churn",
    overrides: dict[str, Any] | None = None,
    reason: Reason = "manual",
    drift: dict[str, Any] | None = None,
    repo: str = ".",
) -> dict[str, Any]:
    """Run the pipeline; publish metrics, validation and report links as artifacts.

    Args:
        dataset: must match params.yaml's dataset.name (guards against the wrong checkout).
        overrides: dotted params keys to set first, e.g. {"tune.n_trials": 4}; written to
            params.yaml (as `dvc exp run -S` does) so dvc.lock records what ran.
        reason: why this run happened: schedule, drift or manual.
        drift: the drift summary that triggered this run (from the monitor flow), if any.
        repo: the project checkout to run in.
    """
    logger = get_run_logger()
    root = Path(repo).resolve()
    params_file = root / "params.yaml"
    params = apply_overrides(params_file, overrides) if overrides else load_params(params_file)
    if params.dataset.name != dataset:
        raise ValueError(f"params.yaml is for dataset {params.dataset.name!r}, not {dataset!r}")
    logger.info("retrain (%s) of %s in %s", reason, dataset, root)
    if drift:
        artifacts.publish_markdown(
            "retrain-trigger",
            f"## Retrain triggered by drift on `{drift.get('batch')}`\n\n"
            + "\n".join(f"- {r}" for r in drift.get("reasons", [])),
            "Why this run happened",
        )
    previous = _read_json(root / params.paths.metrics)

    ran: dict[str, bool] = {}
    try:
        for stage in stage_names(root):
            ran[stage] = run_stage(root, stage)
    finally:
        # Pass or fail, the UI shows what validation said; on failure it is the reason.
        _publish_validation(root, params_file)

    metrics = _read_json(root / params.paths.metrics) or {}
    artifacts.publish_table(
        "metrics",
        artifacts.metrics_rows(metrics, previous),
        "Test metrics: this run, baselines, and the production model before this run",
    )
    card = root / params.paths.model_card_md
    if card.exists():
        artifacts.publish_markdown(
            "model-card", card.read_text(), "Model card of this run's model"
        )
    run_dvc(root, "plots", "show", "-o", str(params.paths.plots_html))
    artifacts.publish_link("plots", root / params.paths.plots_html / "index.html", "DVC plots")
    push(root)
    return {"reason": reason, "stages": ran, "metrics": metrics}
