"""Notifications: the committed automations.yaml made real on a Prefect server, and the
events the flows emit for them.

`apply` (run by `retrain stack up` when RETRAIN_WEBHOOK_URL is set) saves one generic
webhook notification block and replaces the automations named in the file. The flows call
`emit` for what Prefect does not already announce: a drift gate that tripped, a promoted
model, a rejected batch (a failed run is Prefect's own `prefect.flow-run.Failed`).

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
                match={"prefect.resource.id": "prefect.flow-run.*"},
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
