"""The one retrain a monitor run asks for names every batch and signal that tripped."""

from __future__ import annotations

from retrain.monitoring.trigger import retrain_request


def _summary(batch: str, reasons: list[str]) -> dict:
    return {
        "batch": batch,
        "share_drifted": 0.3,
        "drifted_features": ["contract"],
        "gate": {"tripped": True, "reasons": reasons},
    }


def test_the_request_names_every_batch_and_the_traffic_with_their_reasons():
    batches = [_summary("b-0001.csv", ["4 of 19 columns"]), _summary("d-0001.csv", ["7 of 19"])]
    traffic = _summary("traffic until T", ["prediction drift: wasserstein 0.41"])
    asked = retrain_request(batches, traffic, {"id": "42", "name": "monitor-b-0001+1"})
    assert asked["batch"] == "b-0001.csv, d-0001.csv, traffic until T"
    assert asked["batches"] == ["b-0001.csv", "d-0001.csv"] and asked["traffic"] is True
    assert asked["reasons"] == [
        "b-0001.csv: 4 of 19 columns",
        "d-0001.csv: 7 of 19",
        "traffic until T: prediction drift: wasserstein 0.41",
    ]
    assert [s["signal"] for s in asked["signals"]] == ["batch", "batch", "traffic"]
    assert asked["monitor_run"] == {"id": "42", "name": "monitor-b-0001+1"}
    alone = retrain_request([], traffic, {"id": "43", "name": "monitor-no-batch"})
    assert alone["batches"] == [] and alone["batch"] == "traffic until T"
