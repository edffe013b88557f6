"""The notifications' payloads, and automations.yaml against the events the code emits."""

from __future__ import annotations

import re

import yaml

from retrain.monitoring.trigger import retrain_request
from retrain.orchestration.notify import drift_outcome
from tests.conftest import REPO


def _summary(batch: str, report: str | None) -> dict:
    return {
        "batch": batch,
        "share_drifted": 0.37,
        "drifted_features": ["contract"],
        "gate": {"tripped": True, "reasons": ["7 of 19 feature columns drifted"]},
        "report": report,
    }


def test_a_drift_retrains_outcome_names_the_batch_its_report_and_the_monitor():
    # Issue 28: the user heard "drift" and never the outcome of the retrain it started.
    url = "http://127.0.0.1:8000/monitor-mix-0001-20261206/mix-0001-abc/drift.html"
    drift = retrain_request(
        [_summary("mix-0001-abc.csv", url)], None, {"id": "1", "name": "monitor-mix-0001"}
    )
    payload = drift_outcome(drift, "Not promoted: too little evidence", "Not promoted: n = 10")
    assert payload == {
        "outcome": "Not promoted: too little evidence",
        "reason": "Not promoted: n = 10",
        "batch": "mix-0001-abc.csv",
        "reports": f"mix-0001-abc.csv: {url}",
        "monitor": "monitor-mix-0001",
    }
    # A retrain started by hand with reason drift and no parameter still says what it can.
    assert drift_outcome(None, "Promoted", "Promoted: x")["reports"] == "none published"


def test_every_event_the_code_emits_has_an_automation():
    spec = yaml.safe_load((REPO / "automations.yaml").read_text())
    handled = {e for a in spec["automations"] for e in a["events"]}
    code = "\n".join(
        p.read_text() for p in [*(REPO / "flows").glob("*.py"), *(REPO / "src").rglob("*.py")]
    )
    emitted = set(re.findall(r"(?:notify\.emit|announce)\(\s*\"([a-z.]+)\"", code))
    assert "drift.retrained" in emitted
    assert {f"retrain.{e}" for e in emitted} <= handled
