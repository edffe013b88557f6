"""The drift gate on crafted drift reports: each rule trips when, and only when, it should."""

from __future__ import annotations

import json

import pytest

from retrain.config import DriftParams
from retrain.monitoring.drift import ColumnDrift, DriftReport, DriftVerdict, gate

CFG = DriftParams(max_share_drifted=0.25)


def feature(name: str, drifted: bool) -> ColumnDrift:
    return ColumnDrift(name, "numeric", "wasserstein", 0.3 if drifted else 0.01, 0.1, drifted)


def report(
    drifted: int,
    of: int = 8,
    *,
    prediction: bool | None = False,
    target: bool | None = False,
) -> DriftReport:
    """`drifted` of `of` features drifted; the scores and labels drifted or not (None: not
    measured, as on a batch without labels)."""
    features = [feature(f"f{i}", i < drifted) for i in range(of)]
    pred = (
        None
        if prediction is None
        else ColumnDrift("__score__", "prediction", "wasserstein", 0.4, 0.15, prediction)
    )
    tgt = (
        None
        if target is None
        else ColumnDrift("churn", "target", "jensenshannon", 0.2, 0.1, target)
    )
    return DriftReport(1000, 200, features, pred, tgt)


def test_a_calm_batch_passes():
    verdict = gate(report(0), CFG)
    assert verdict == DriftVerdict(False, [])


def test_feature_share_trips_only_above_the_bound():
    assert not gate(report(2), CFG).tripped  # 25% is not above 25%
    verdict = gate(report(3), CFG)
    assert verdict.tripped and len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith("3 of 8 feature columns drifted (38% > 25%): f0, f1, f2")


def test_prediction_drift_trips_alone_unless_turned_off():
    verdict = gate(report(0, prediction=True), CFG)
    assert verdict.tripped
    assert verdict.reasons == ["prediction drift: wasserstein 0.4 (threshold 0.15)"]
    off = CFG.model_copy(update={"gate_on_prediction": False})
    assert not gate(report(0, prediction=True), off).tripped


def test_target_drift_trips_alone_unless_turned_off():
    verdict = gate(report(0, target=True), CFG)
    assert verdict.reasons == ["target drift: jensenshannon 0.2 (threshold 0.1)"]
    off = CFG.model_copy(update={"gate_on_target": False})
    assert not gate(report(0, target=True), off).tripped


def test_unmeasured_scores_and_labels_do_not_trip():
    assert not gate(report(1, prediction=None, target=None), CFG).tripped


def test_every_reason_is_reported_and_the_verdict_is_json():
    verdict = gate(report(8, prediction=True, target=True), CFG)
    assert verdict.tripped and len(verdict.reasons) == 3
    assert json.loads(json.dumps(verdict.to_dict())) == {
        "tripped": True,
        "reasons": verdict.reasons,
    }


@pytest.mark.parametrize("bound", [0.0, 1.0])
def test_the_share_bound_is_inclusive_at_its_ends(bound):
    cfg = CFG.model_copy(update={"max_share_drifted": bound})
    assert gate(report(1), cfg).tripped is (bound == 0.0)
    assert not gate(report(0), cfg).tripped
    assert gate(report(8), cfg).tripped is (bound < 1.0)
