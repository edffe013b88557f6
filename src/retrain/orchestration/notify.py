"""Notifications: the committed automations.yaml made real on a Prefect server, and the
events the flows emit for them.

`apply` (run by `retrain stack up` when RETRAIN_WEBHOOK_URL is set) saves one generic
webhook notification block and replaces the automations named in the file. The flows call
`emit` for what Prefect does not already announce: a drift gate that tripped, a promoted
model, a rejected batch, how a retrain that drift started ended (a failed run is Prefect's
own `prefect.flow-run.Failed`); the canary commands call `announce` (a canary promoted or
aborted, about the model, not a run).

    python -m retrain.orchestration.notify <repo> <webhook-url>   # PREFECT_API_URL set
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import yaml

ENV_WEBHOOK = "RETRAIN_WEBHOOK_URL"
SPEC = "automations.yaml"


def emit(event: str, **payload: Any) -> None:
    """Emit `retrain.<event>` about the current flow run (a no-op outside a run)."""
    from prefect.events import emit_event
    from prefect.runtime import flow_run

    if not flow_run.id:
        return
    emit_event(
        event=f"retrain.{event}",
        resource={
            "prefect.resource.id": f"prefect.flow-run.{flow_run.id}",
            "prefect.resource.name": str(flow_run.name),
        },
        payload={k: str(v) for k, v in payload.items()},
    )


def announce(event: str, model: str, **payload: Any) -> str:
    """Emit `retrain.<event>` about registry model `model` from outside any flow run (a CLI
    command such as `retrain canary promote`); returns what happened, for the user.

    Sent only when a Prefect server is configured (PREFECT_API_URL): without one no
    automation could hear it, and the caller says so instead.
    """
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker

    from retrain.registry.lock import server_url

    url = server_url()
    if url is None:
        return "no notification: no Prefect server configured (PREFECT_API_URL)"
    emit_event(
        event=f"retrain.{event}",
        resource={"prefect.resource.id": f"retrain.model.{model}", "prefect.resource.name": model},
        payload={"model": model, **{k: str(v) for k, v in payload.items()}},
    )
    EventsWorker.drain_all(timeout=30)  # a command exits at once: send it before that
    return f"notification retrain.{event} sent to {url}"


def drift_outcome(drift: dict[str, Any] | None, outcome: str, message: str) -> dict[str, str]:
    """The payload of `retrain.drift.retrained`: how a retrain that drift started ended (its
    state's name: Promoted, Not promoted: ..., Unchanged) and why, the batches that started
    it with their Evidently reports as the monitor published them, and that monitor run.

    Args:
        drift: the retrain's `drift` parameter (retrain.monitoring.trigger.retrain_request).
        outcome: the retrain's final state name.
        message: its final message (the gate's reasons, the record).
    """
    drift = drift or {}
    signals = drift.get("signals") or []
    reports = [f"{s.get('batch')}: {s['report']}" for s in signals if s.get("report")]
    return {
        "outcome": outcome,
        "reason": message,
        "batch": str(drift.get("batch") or "unknown batch"),
        "reports": "; ".join(reports) or "none published",
        "monitor": str((drift.get("monitor_run") or {}).get("name") or "unknown"),
    }


def load_spec(repo: Path) -> dict[str, Any]:
    return yaml.safe_load((repo / SPEC).read_text())


def apply(repo: Path, webhook_url: str) -> list[str]:
    """Save the webhook block and (re)create every automation of automations.yaml.

    Returns:
        The names of the automations created.
    """
    from prefect.automations import Automation, EventTrigger, SendNotification
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.events.schemas.automations import Posture

    spec = load_spec(repo)
    hook = spec["webhook"]
    block = CustomWebhookNotificationBlock.model_validate(
        {"name": hook["block_name"], "url": webhook_url, "json_data": hook["json_data"]}
    )
    block_id = cast(UUID, block.save(hook["block_name"], overwrite=True))
    created = []
    for item in spec["automations"]:
        old = _existing(item["name"])
        if old is not None:
            old.delete()
        Automation(
            name=item["name"],
            description=item.get("description", ""),
            trigger=EventTrigger(
                expect=set(item["events"]),
                # A flow's events are about its run; a command's (canary) about the model.
                match={"prefect.resource.id": item.get("resource", "prefect.flow-run.*")},
                posture=Posture.Reactive,
                threshold=1,
            ),
            actions=[
                SendNotification(
                    block_document_id=block_id, subject=item["subject"], body=item["body"]
                )
            ],
        ).create()
        created.append(item["name"])
    return created


def _existing(name: str) -> Any:
    from prefect.automations import Automation

    try:
        return Automation.read(name=name)
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    names = apply(Path(args[0]), args[1])
    print("automations: " + ", ".join(names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
