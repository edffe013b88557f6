"""Flow `retrain`: the DVC pipeline as Prefect tasks, then the gate, then the run's record.

(The file is retraining.py: a flows/retrain.py would shadow the `retrain` package, since
Prefect puts a flow script's folder first on sys.path.) DVC does the work
(`dvc repro --single-item <stage>`), so dvc.lock records the run and an unchanged stage is
skipped exactly as `dvc repro` would skip it.

Around the pipeline (see README, "Reproducible retraining"): one retrain at a time (a file
lock); the production model (champion) is found in the GTO registry and its tuned
parameters become the study's first trial; after the pipeline the gate compares the new
model (challenger) with the champion on the same holdout; data and models are pushed; last,
the record (commit + `run/<id>` tag, GTO version and prod tags) is published at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task

from retrain.config import Params, apply_overrides, load_params, load_params_at
from retrain.orchestration import artifacts
from retrain.orchestration.dvc import DvcError, run_dvc, stage_names, stage_ran
from retrain.registry import champion as champions
from retrain.registry import gate, lock, record

Reason = Literal["schedule", "drift", "manual"]


@task(task_run_name="{stage}")
def run_stage(repo: Path, stage: str) -> bool:
    """Reproduce one stage through DVC, streaming its log; True when it ran, False if skipped."""
    logger = get_run_logger()
    lines = run_dvc(repo, "repro", "--single-item", stage, on_line=logger.info)
    return stage_ran(lines, stage)


@task(retries=2, retry_delay_seconds=5)
def push(repo: Path, data_pin: Path) -> None:
    """Send data and models to the DVC remote: the one step that can fail transiently.

    The raw data is committed to the DVC cache first (a checkout whose data came from
    elsewhere may not have it there), and a push that leaves anything behind fails: a
    record promises that everything it pins can be pulled.
    """
    logger = get_run_logger()
    run_dvc(repo, "commit", "-f", "-q", str(data_pin), on_line=logger.info)
    lines = run_dvc(repo, "push", on_line=logger.info)
    if any("cache files do not exist" in line for line in lines):
        raise DvcError("dvc push left outputs behind (missing from the cache); not recording")


@task
def find_champion(repo: Path, params: Params) -> champions.Champion | None:
    """The version in production, materialised from the DVC cache/remote."""
    return champions.find(repo, params)


@task
def challenge(repo: Path, params: Params, champion: champions.Champion | None) -> gate.GateResult:
    """Challenger against champion on the same holdout."""
    return champions.challenge(repo, params, champion)


@task
def write_record(repo: Path, params: Params, **fields: Any) -> dict[str, Any]:
    """Commit and tag the record with the registry's tags, in one transaction."""
    return record.write(repo, params, **fields)


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


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    return str(flow_run.id) if flow_run.id else None


@flow(name="retrain", log_prints=True)
def retraining_flow(
    dataset: str | None = None,
    overrides: dict[str, Any] | None = None,
    reason: Reason = "manual",
    drift: dict[str, Any] | None = None,
    repo: str = ".",
    lock_timeout_s: float | None = None,
) -> dict[str, Any]:
    """Run the pipeline, gate the new model, record the run; publish artifacts on the way.

    Args:
        dataset: if given, must match params.yaml's dataset.name (guards against the wrong
            checkout); by default the run is for whatever dataset params.yaml configures.
        overrides: dotted params keys to set first, e.g. {"tune.n_trials": 4}; written to
            params.yaml (as `dvc exp run -S` does) so dvc.lock and the record hold what ran.
        reason: why this run happened: schedule, drift or manual.
        drift: the drift summary that triggered this run (from the monitor flow), if any.
        repo: the project checkout to run in.
        lock_timeout_s: how long to wait for a retrain already running (default
            registry.lock_timeout_s); 0 fails at once.
    """
    logger = get_run_logger()
    root = Path(repo).resolve()
    params_file = root / "params.yaml"
    initial = load_params_at(root)
    run_id = record.new_run_id()
    timeout = initial.registry.lock_timeout_s if lock_timeout_s is None else lock_timeout_s
    # Everything that writes (params.yaml included) happens under the lock.
    with lock.exclusive(initial.paths.retrain_lock, run_id, timeout):
        # Refuse uncommitted code before anything is written.
        start = record.begin(root, initial, reason, run_id)
        if overrides:
            apply_overrides(params_file, overrides)
        params = load_params_at(root)
        if dataset is not None and params.dataset.name != dataset:
            raise ValueError(
                f"params.yaml is for dataset {params.dataset.name!r}, not {dataset!r}"
            )
        logger.info("retrain %s (%s) of %s in %s", run_id, reason, params.dataset.name, root)
        if drift:
            artifacts.publish_markdown(
                "retrain-trigger",
                f"## Retrain triggered by drift on `{drift.get('batch')}`\n\n"
                + "\n".join(f"- {r}" for r in drift.get("reasons", [])),
                "Why this run happened",
            )
        champion = find_champion(root, params)
        warm = champions.warm_start(champion)
        champions.write_warm_start(params.paths.warm_start, warm)
        logger.info("champion: %s", champion.model.label if champion else "none (first model)")

        ran: dict[str, bool] = {}
        try:
            for stage in stage_names(root):
                ran[stage] = run_stage(root, stage)
        finally:
            # Pass or fail, the UI shows what validation said; on failure it is the reason.
            _publish_validation(root, params_file)

        decision = challenge(root, params, champion)
        champion_label = champion.model.label if champion else None
        artifacts.publish_markdown(
            "gate",
            gate.markdown(decision, champion_label, "challenger"),
            f"Champion/challenger gate: {decision.decision}",
        )
        metrics = _read_json(params.paths.metrics) or {}
        artifacts.publish_table(
            "metrics",
            artifacts.metrics_rows(metrics, champion.metrics if champion else None),
            "Test metrics: this run, baselines, and the production model (as recorded on its "
            "own test split; the gate compares both on this run's holdout)",
        )
        card = params.paths.model_card_md
        if card.exists():
            artifacts.publish_markdown(
                "model-card", card.read_text(), "Model card of this run's model"
            )
        run_dvc(root, "plots", "show", "-o", str(params.paths.plots_html))
        artifacts.publish_link("plots", params.paths.plots_html / "index.html", "DVC plots")
        push(root, params.paths.data_pin)
        rec = write_record(
            root,
            params,
            start=start,
            gate=decision,
            champion=champion.model.version if champion else None,
            warm_start=warm,
            stages=ran,
            trigger=drift,
            flow_run_id=_flow_run_id(),
        )
    artifacts.publish_markdown("run-record", artifacts.record_markdown(rec), f"run/{run_id}")
    return {
        "run_id": run_id,
        "reason": reason,
        "stages": ran,
        "metrics": metrics,
        "gate": decision.decision,
        "model": rec["model"],
    }
