"""What a monitor run asks of the one retrain it starts: every signal that tripped in the run.

A monitor run gathers its signals (each accepted batch's drift gate, then the traffic's) and
starts at most one retrain; its `drift` parameter names every batch and signal, with each
gate's reasons, and links back to the monitor run that started it.
"""

from __future__ import annotations

from typing import Any

from retrain.orchestration.artifacts import drift_digest


def retrain_request(
    batches: list[dict[str, Any]], traffic: dict[str, Any] | None, monitor: dict[str, str]
) -> dict[str, Any]:
    """The retrain's `drift` parameter.

    Args:
        batches: the drift summaries of the batches whose gate tripped, in ingest order.
        traffic: the traffic's drift summary when its gate tripped, else None.
        monitor: the monitor run that asks (id, name).
    """
    signals = [{"signal": "batch", **drift_digest(s)} for s in batches]
    if traffic is not None:
        signals.append({"signal": "traffic", **drift_digest(traffic)})
    return {
        # `batch` and `reasons` are what the retrain's trigger artifact shows.
        "batch": ", ".join(str(s["batch"]) for s in signals),
        "batches": [s["batch"] for s in signals if s["signal"] == "batch"],
        "traffic": traffic is not None,
        "reasons": [f"{s['batch']}: {r}" for s in signals for r in s["reasons"]],
        "signals": signals,
        "monitor_run": monitor,
    }
