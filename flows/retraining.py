"""Flow `retrain`: the DVC pipeline as Prefect tasks, then the gate, then the run's record.

(The file is retraining.py: a flows/retrain.py would shadow the `retrain` package, since
Prefect puts a flow script's folder first on sys.path.) DVC does the work
(`dvc repro --single-item <stage>`), so dvc.lock records the run and an unchanged stage is
skipped exactly as `dvc repro` would skip it.

Around the pipeline (see README, "Reproducible retraining"): the project lock (one writer
at a time: retrain, ingest, rollback, monitor); the run's overrides apply to it only
(registry.overrides); the production model (champion) is found in the GTO registry and its tuned
parameters become the study's first trial; after the pipeline the gate compares the new
model (challenger) with the champion on the same holdout; data and models are pushed; last,
the record (commit + `run/<id>` tag, GTO version and prod tags) is published at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.states import State

from retrain.config import Params, check_overrides
from retrain.history.publish import publish_history
from retrain.infra import dvc
from retrain.orchestration import artifacts, failure, notify, runview
from retrain.project import Project
from retrain.registry import champion as champions
from retrain.registry import gate, lock, record
from retrain.registry import overrides as run_overrides

Reason = Literal["schedule", "drift", "manual"]


@task(task_run_name="{stage}")
def run_stage(project: Project, stage: str, run: str) -> State[Any]:
    """Reproduce one stage through DVC, streaming its log; data True when it ran, False (state
    `Skipped`) when DVC found it up to date. Its artifacts are attached to it."""
    logger = get_run_logger()
    progress = runview.TrialProgress() if stage == "tune" else None
    log = runview.StageLog(logger.info, on_trial=progress)
    try:
        # Recorded: if this process is killed outright, whoever next takes the lock stops it.
        record = lock.dvc_record(project.params.paths.retrain_lock)
        lines = dvc.run(project.root, "repro", "--single-item", stage, on_line=log, record=record)
    finally:
        log.flush()
        if stage == "validate":
            # Pass or fail, the UI shows what validation said; on failure it is the reason.
            artifacts.publish_validation(project.root, project.params, run)
    ran = dvc.stage_ran(lines, stage)
    if stage == "tune":
        artifacts.publish_trials(project.params)
    if not ran:
        logger.info("%s skipped: DVC found its inputs unchanged (dvc.lock)", stage)
    return runview.stage_state(stage, ran)


@task(task_run_name="push", retries=2, retry_delay_seconds=5)
def push(project: Project) -> None:
    """Send data and models to the DVC remote: the one step that can fail transiently.

    The raw data is committed to the DVC cache first (a checkout whose data came from
    elsewhere may not have it there), and a push that leaves anything behind fails: a
    record promises that everything it pins can be pulled.
    """
    log = runview.StageLog(get_run_logger().info)
    paths = project.params.paths
    # The pinned evaluation set the gate scored (retrain.ingest.holdout), where there is one.
    pins = [paths.data_pin, *([paths.holdout_pin] if paths.holdout_pin.exists() else [])]
    dvc.commit_and_push(project.root, pins, everything=True, on_line=log)
    log.flush()


@task(task_run_name="find-champion")
def find_champion(repo: Path, params: Params) -> champions.Champion | None:
    """The version in production, materialised from the DVC cache/remote."""
    return champions.find(repo, params)


@task(task_run_name="challenge")
def challenge(repo: Path, params: Params, champion: champions.Champion | None) -> gate.GateResult:
    """Challenger against champion on the same holdout; its artifacts say what was decided."""
    decision = champions.challenge(repo, params, champion)
    artifacts.publish_gate(params, decision, champion)
    return decision


@task(task_run_name="publish-reports")
def publish_reports(
    project: Project, run: str, drift: dict[str, Any] | None = None
) -> dict[str, str]:
    """What this run shows beyond its stages: why it ran (a drift trigger), its plots, model
    card and drift report, copied to its own folder and linked (the card's artifact comes
    with the record: write_record)."""
    if drift:
        artifacts.publish_markdown(
            "retrain-trigger",
            f"## Retrain triggered by drift on `{drift.get('batch')}`\n\n"
            + "\n".join(f"- {r}" for r in drift.get("reasons", [])),
            "Why this run happened",
        )
    params = project.params
    dvc.run(project.root, "plots", "show", "-o", str(params.paths.plots_html))
    return artifacts.publish_run_reports(project.root, params, run)


@task(task_run_name="write-record")
def write_record(project: Project, run: str, **fields: Any) -> dict[str, Any]:
    """Commit and tag the record with the registry's tags, in one transaction; the record
    is also the run's `run-record` artifact, and its facts complete the run's model card."""
    rec = record.write(project.root, project.params, **fields)
    run_id = rec["run_id"]
    artifacts.publish_markdown("run-record", artifacts.record_markdown(rec), f"run/{run_id}")
    # Here, not with the reports: only now are the gate's decision and the version known.
    artifacts.publish_run_card(project.params, run, rec)
    return rec


@flow(name="retrain", log_prints=True, flow_run_name="retrain-{reason}")
def retraining_flow(
    dataset: str | None = None,
    overrides: dict[str, Any] | None = None,
    reason: Reason = "manual",
    drift: dict[str, Any] | None = None,
    repo: str = ".",
    lock_timeout_s: float | None = None,
) -> State[Any]:
    """Run the pipeline, gate the new model, record the run; publish artifacts on the way.

    Ends in a COMPLETED state named by the outcome (`Promoted`, `Not promoted: ECE`, ...); its
    result is a dict (run_id, reason, stages, metrics, gate, model).

    Args:
        dataset: if given, must match params.yaml's dataset.name (guards against the wrong
            checkout); by default the run is for whatever dataset params.yaml configures.
        overrides: dotted params keys for this run only, e.g. {"tune.n_trials": 4}, laid over
            registry.retrain_overrides (the flow's own: its tuning budget); only
            config.TUNABLE_KEYS, never the gate's rules (config.GATE_KEYS: refused before
            anything runs; they change by a committed params.yaml). In params.yaml while
            the run runs (as `dvc exp run -S`), so dvc.lock and the record commit hold what
            ran; put back afterwards, even after a kill (the next run restores it), so the
            branch keeps the committed params.yaml.
        reason: why this run happened: schedule, drift or manual.
        drift: the drift summary that triggered this run (from the monitor flow), if any.
        repo: the project checkout to run in.
        lock_timeout_s: how long to wait for a retrain already running (default
            registry.lock_timeout_s); 0 fails at once.
    """
    logger = get_run_logger()
    run_id = record.new_run_id()
    # Named first, so a run that fails early (refused overrides, a busy lock, a failing
    # stage) is still told apart in the UI by its reason and id.
    runview.name_run(f"retrain-{reason}-{run_id}", [f"reason:{reason}"])
    if overrides:
        check_overrides(overrides)  # before anything waits or writes
    initial = Project.load(repo)
    # The flow's own overrides (registry.retrain_overrides: its tuning budget) under the run's.
    overrides = run_overrides.with_retrain_overrides(initial.params, overrides)
    timeout = initial.params.registry.lock_timeout_s if lock_timeout_s is None else lock_timeout_s
    lock_path = initial.params.paths.retrain_lock
    # Everything that writes (params.yaml included) happens under the lock.
    with lock.exclusive(lock_path, run_id, timeout, on_wait=logger.warning):
        # (A run killed mid-stage left its dvc repro running: taking the lock stopped it.)
        # A run killed with its overrides applied left them in params.yaml: put it back.
        run_overrides.recover(initial.params_file, lock_path, logger.warning)
        # ... and one killed mid-pipeline left dvc.lock and the outputs half updated.
        failure.recover_killed(initial, lock.state_folder(lock_path), logger.warning)
        # Refuse uncommitted code before anything is written.
        start = record.begin(initial.root, initial.params, reason, run_id)
        with run_overrides.applied(initial.params_file, lock_path, run_id, overrides) as before:
            # The params as this run sees them (its overrides applied).
            project = Project.load(initial.root, initial.params_file)
            rec, ran, metrics, decision = _run(
                project, dataset, reason, drift, run_id, start, overrides, before
            )
    name, message, rejected = runview.gate_outcome(decision.decision, decision.reasons)
    runview.add_tags(["promoted" if rec["model"]["promoted"] else "not-promoted"])
    model = rec["model"]
    message += f" (record run/{run_id}; {model['name']} {model['version']}, prod {model['prod']})"
    if model["promoted"]:
        notify.emit("model.promoted", model=f"{model['name']}@{model['version']}", outcome=message)
    if reason == "drift":  # whatever the gate said: the user heard "drift", now the outcome
        notify.emit("drift.retrained", **notify.drift_outcome(drift, name, message))
    result = {
        "run_id": run_id,
        "reason": reason,
        "overrides": overrides or None,
        "stages": ran,
        "metrics": metrics,
        "gate": decision.decision,
        "model": model,
    }
    publish_history(initial)  # the model history page and its Prefect artifacts
    return runview.final_state(name, message, result, rejected, logger)


def _run(
    project: Project,
    dataset: str | None,
    reason: Reason,
    drift: dict[str, Any] | None,
    run_id: str,
    start: record.RunStart,
    overrides: dict[str, Any] | None,
    params_before: str,
) -> tuple[dict[str, Any], dict[str, bool], dict[str, Any], gate.GateResult]:
    """The run itself, with the lock held and the overrides in place: the pipeline's stages
    in DVC's dependency order, the gate, the reports, the push, the record."""
    logger = get_run_logger()
    root, params = project.root, project.params
    if dataset is not None and params.dataset.name != dataset:
        raise ValueError(f"params.yaml is for dataset {params.dataset.name!r}, not {dataset!r}")
    run = f"retrain-{reason}-{run_id}"  # the flow run's name (retraining_flow)
    logger.info("retrain %s (%s) of %s in %s", run_id, reason, params.dataset.name, root)
    if overrides:
        logger.info("overrides for this run only: %s", overrides)
    champion = find_champion(root, params)
    warm = champions.warm_start(champion)
    champions.write_warm_start(params.paths.warm_start, warm)
    logger.info("champion: %s", champion.model.label if champion else "none (first model)")

    ran: dict[str, bool] = {}
    # A stage that fails puts dvc.lock and the stage outputs back, naming the batch or stage.
    keep = lock.state_folder(params.paths.retrain_lock)  # where a killed run leaves it
    with failure.restored_on_failure(project, logger.error, keep) as progress:
        for stage in dvc.stage_order(root):
            progress.stage = stage
            ran[stage] = bool(run_stage(project, stage, run).result())

    decision = challenge(root, params, champion)
    metrics = artifacts.read_json(params.paths.metrics) or {}
    publish_reports(project, run, drift)
    push(project)
    rec = write_record(
        project,
        run,
        start=start,
        gate=decision,
        champion=champion.model.version if champion else None,
        warm_start=warm,
        stages=ran,
        trigger=drift,
        flow_run_id=runview.current_flow_run_id(),
        overrides=overrides or None,
        params_before=params_before,
    )
    return rec, ran, metrics, decision


if __name__ == "__main__":
    # `python flows/retraining.py [repo]`: one manual run here, without a deployment.
    import sys

    retraining_flow(repo=sys.argv[1] if len(sys.argv) > 1 else ".")
