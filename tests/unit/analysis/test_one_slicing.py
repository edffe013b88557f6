"""The report and the promotion gate slice the same rows the same way: same names (a gap is
`__missing__` in both), same counts, same small slices, same numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.analysis.slices import MISSING, SliceRule, define, slice_label, slice_metrics
from retrain.config import GateParams
from retrain.models.metrics import expected_calibration_error
from retrain.registry.gate import decide

RULE = SliceRule(min_rows=40, min_class_rows=5)
COLUMNS = ["plan", "senior"]


@pytest.fixture(scope="module")
def holdout() -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """600 rows: `plan` has gaps (None and NaN) and a 12-row level; `senior` is 0.0/1.0/NaN."""
    rng = np.random.default_rng(3)
    n = 600
    plan = rng.choice(["basic", "plus", "pro"], n).astype(object)
    plan[:30] = None
    plan[30:60] = np.nan
    plan[60:72] = "legacy"  # below RULE.min_rows
    senior = rng.choice([0.0, 1.0], n, p=[0.8, 0.2])
    senior[100:150] = np.nan
    frame = pd.DataFrame({"plan": plan, "senior": senior, "x": rng.normal(size=n)})
    q = rng.uniform(0.05, 0.95, n)
    y = (rng.uniform(size=n) < q).astype(int)
    champion = np.clip(q + rng.normal(0, 0.2, n), 0.01, 0.99)
    return frame, y, q, champion


def test_the_report_and_the_gate_have_the_same_slice_table(holdout):
    frame, y, p, champion = holdout
    report = slice_metrics(frame, y, p, COLUMNS, threshold=0.5, rule=RULE)
    cfg = GateParams(metric="roc_auc", slices=COLUMNS, slice_tolerance=1.0, max_ece=1.0)
    gate = decide(y, p, champion, frame[COLUMNS], cfg, rule=RULE)

    reported = {e["name"]: e for values in report["slices"].values() for e in values.values()}
    assert [s.name for s in gate.slices] == list(reported)
    assert "plan=__missing__" in reported and "senior=__missing__" in reported
    assert reported["plan=__missing__"]["n"] == 60  # None and NaN are one slice
    assert "senior=1" in reported  # 1.0 is "1" in both
    for s in gate.slices:
        entry = reported[s.name]
        assert (s.rows, s.positives, s.small) == (entry["n"], entry["positives"], entry["small"])
        assert s.challenger == entry["metrics"]["roc_auc"], s.name
        assert (s.status == "skipped") == s.small, s.name
    legacy = next(s for s in gate.slices if s.name == "plan=legacy")
    assert legacy.small and legacy.status == "skipped" and reported["plan=legacy"]["small"]
    assert report["weakest"]["plan"]["value"] != "legacy"
    # The overall numbers are the same metric functions too.
    assert gate.challenger["roc_auc"] == report["overall"]["roc_auc"]
    assert gate.challenger["ece"] == expected_calibration_error(y, p, 10)


def test_a_slice_is_small_by_rows_or_by_either_class():
    rule = SliceRule(min_rows=10, min_class_rows=3)
    assert rule.small(9, 5)
    assert rule.small(20, 2) and rule.small(20, 18)
    assert not rule.small(20, 3) and not rule.small(20, 17)
    frame = pd.DataFrame({"c": ["a"] * 12 + ["b"] * 20})
    y = np.array([1] * 2 + [0] * 10 + [1] * 10 + [0] * 10)
    a, b = define(frame, y, ["c"], rule)
    assert (a.name, a.n, a.positives, a.small) == ("c=a", 12, 2, True)
    assert (b.name, b.n, b.positives, b.small) == ("c=b", 20, 10, False)


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (None, MISSING),
        (float("nan"), MISSING),
        (np.float32("nan"), MISSING),
        (pd.NA, MISSING),
        (1.0, "1"),
        (np.float32(0.0), "0"),
        (2.5, "2.5"),
        ("One year", "One year"),
        (3, "3"),
    ],
)
def test_slice_labels(value, label):
    assert slice_label(value) == label
