"""How a run reads in the Prefect UI: its name and tags, its final state, and a stage's log.

The flows call these; they hold no pipeline logic. `StageLog` turns DVC's streamed output
into log records (advice to run `git add`/`dvc push` dropped, a table as one block, tune's
trials as a progress artifact); the rest talk to the Prefect API for the current run.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect.states import Completed, State

# What DVC prints for a person at a shell, not for a run's log (the flow does these itself).
DVC_ADVICE = (
    "To track the changes with git, run:",
    "git add ",
    "To enable auto staging, run:",
    "dvc config core.autostage",
    "Use `dvc push` to send your updates to remote storage.",
)
TRIAL = re.compile(r"^tune: trial (\d+) of (\d+):")


def is_advice(line: str) -> bool:
    text = line.strip()
    return any(text.startswith(a) for a in DVC_ADVICE)


class StageLog:
    """An `on_line` for `run_dvc`: what a stage printed, as the task's log.

    Args:
        log: where lines go (a Prefect run logger's `info`).
        on_trial: called with (n, of N) for each tune trial line.
    """

    def __init__(
        self,
        log: Callable[[str], Any],
        on_trial: Callable[[int, int], Any] | None = None,
    ) -> None:
        self.log, self.on_trial = log, on_trial
        self.table: list[str] = []

    def __call__(self, line: str) -> None:
        if line.lstrip().startswith("|"):
            self.table.append(line)
            return
        self.flush()
        if is_advice(line):
            return
        self.log(line)
        match = TRIAL.match(line.strip())
        if match and self.on_trial is not None:
            self.on_trial(int(match[1]), int(match[2]))

    def flush(self) -> None:
        """Log the table collected so far as one record."""
        if self.table:
            self.log("\n" + "\n".join(self.table))
            self.table = []


class TrialProgress:
    """A Prefect progress artifact that follows tune's `trial n of N` lines."""

    def __init__(self, key: str = "tune-progress") -> None:
        self.key: str = key
        self.id: Any = None

    def __call__(self, n: int, total: int) -> None:
        from prefect.artifacts import create_progress_artifact, update_progress_artifact

        percent = round(100.0 * n / max(total, 1), 1)
        if self.id is None:
            self.id = create_progress_artifact(
                percent, key=self.key, description=f"Tune: trial {n} of {total}"
            )
        else:
            update_progress_artifact(self.id, percent, description=f"Tune: trial {n} of {total}")


def current_flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    return str(flow_run.id) if flow_run.id else None


def name_run(name: str, tags: list[str] | None = None) -> None:
    """Rename the current flow run and add `tags` (the UI's run list shows both)."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    run_id = flow_run.id
    if not run_id:
        return
    with get_client(sync_client=True) as client:
        current = client.read_flow_run(run_id)
        merged = sorted(set(current.tags) | set(tags or []))
        client.update_flow_run(run_id, name=name, tags=merged)


def add_tags(tags: list[str]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    run_id = flow_run.id
    if not run_id:
        return
    with get_client(sync_client=True) as client:
        current = client.read_flow_run(run_id)
        client.update_flow_run(run_id, tags=sorted(set(current.tags) | set(tags)))


def gate_outcome(decision: str, reasons: list[str]) -> tuple[str, str, bool]:
    """(state name, message, is it a rejection) of a retrain's gate decision."""
    if decision == "first":
        return "Promoted", "Promoted: the first model in production", False
    if decision == "promoted":
        return "Promoted", "Promoted: " + "; ".join(reasons), False
    if decision == "unchanged":
        return "Unchanged", "Not promoted: " + "; ".join(reasons), False
    if decision == "insufficient":  # the first reason says how little (registry.gate)
        return "Not promoted: too little evidence", "Not promoted: " + reasons[0], True
    failed = [r for r in reasons if _is_failure(r)] or reasons
    return f"Not promoted: {_short(failed[0])}", "Not promoted: " + "; ".join(failed), True


def _is_failure(reason: str) -> bool:
    failures = (
        "short of the margin",
        "too uncertain",
        "regresses",
        "above the bound",
        # a regression interval's coverage (registry.gate.coverage_tolerance)
        "misses its level",
        "coverage unknown",
    )
    return any(k in reason for k in failures)


def _short(reason: str) -> str:
    if reason.startswith(("ECE", "top-class ECE")):  # binary; multiclass: of the top class
        return "ECE"
    if reason.startswith("interval coverage"):
        return "interval coverage"
    if reason.startswith("slice"):
        return "slice " + reason.split()[1]
    return reason.split()[0]  # the metric's name


def final_state(
    name: str, message: str, data: Any, warn: bool, logger: logging.LoggerAdapter[Any] | Any
) -> State[Any]:
    """The flow's COMPLETED state, named by its outcome; a rejection is also a WARNING."""
    (logger.warning if warn else logger.info)("%s", message)
    return Completed(name=name, message=message, data=data)


def stage_state(stage: str, ran: bool) -> State[Any]:
    """A stage task's final state: `Skipped` when DVC found its inputs unchanged."""
    if ran:
        return Completed(message=f"{stage} ran", data=True)
    return Completed(
        name="Skipped", message=f"{stage} skipped: DVC found its inputs unchanged", data=False
    )


def monitor_run_name(batches: list[str]) -> str:
    """`monitor-<first batch>`, `+N` when more landed, `monitor-no-batch` when none."""
    if not batches:
        return "monitor-no-batch"
    stem = Path(batches[0]).stem
    return f"monitor-{stem}" + (f"+{len(batches) - 1}" if len(batches) > 1 else "")


def monitor_outcome(
    records: list[dict[str, Any]], retrain: dict[str, Any] | None = None
) -> tuple[str, str, bool, list[str]]:
    """(state name, message, warn, tags) of a monitor run: every outcome it had.

    Args:
        records: one per landed batch (status, reason, drift gate) and one for traffic.
        retrain: the run's one retrain (flow_run_id, name, state, started: False when one
            started by an earlier monitor run was still active), None when none was asked.
    """
    names = {id(r): Path(r["source"]).name for r in records}
    accepted = [names[id(r)] for r in records if r.get("status") == "accepted"]
    rejected = [r for r in records if r.get("status") in ("rejected", "refused")]
    tripped = [r for r in records if (r.get("drift") or {}).get("tripped")]
    parts, tags, title = [], [], []
    if accepted:
        parts.append(f"{len(accepted)} batch(es) accepted: {', '.join(accepted)}")
    for r in records:
        if r.get("status") == "traffic":
            parts.append(f"traffic checked: {r.get('batch')}")
        if r.get("canary"):
            parts.append(f"{names[id(r)]} {r['canary']['said']}")
    if rejected:
        said = [f"{names[id(r)]} ({r.get('reason')})" for r in rejected]
        parts.append(f"{len(rejected)} batch(es) rejected: {', '.join(said)}")
        tags.append("batch-rejected")
        title.append("Batch rejected")
    if tripped:
        seen = [r.get("batch") or names[id(r)] for r in tripped]
        parts.append(f"drift gate tripped on {', '.join(seen)}")
        tags.append("drift-tripped")
        title.append(_drift_title(retrain))
        parts.append(_retrain_said(retrain))
        if retrain:
            tags.append("retrain-started" if retrain["started"] else "retrain-pending")
    if not title:
        title.append("No drift" if records else "No batch")
        parts.append("no drift" if records else "no new batch in the landing folder")
    return " + ".join(title), "; ".join(parts), bool(rejected or tripped), tags


def _drift_title(retrain: dict[str, Any] | None) -> str:
    if retrain is None:
        return "Drift"
    return "Drift: retrain started" if retrain["started"] else "Drift: retrain pending"


def _retrain_said(retrain: dict[str, Any] | None) -> str:
    if retrain is None:
        return "no retrain started (trigger off)"
    run = f"{retrain['name']} ({retrain['flow_run_id']})"
    if retrain["started"]:
        return f"retrain started: {run}"
    return (
        f"no new retrain: {run}, started by an earlier monitor run, is still "
        f"{retrain['state']} and will read these batches"
    )


def stamped(run: str) -> str:
    """`run` plus the UTC time to the second: a report folder no later run reuses."""
    from datetime import UTC, datetime

    return f"{run}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
