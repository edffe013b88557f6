"""The champion/challenger gate on crafted scores: each rule blocks when, and only when, it
should."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.analysis.slices import SliceRule
from retrain.config import GateParams
from retrain.models.metrics import gain, score
from retrain.registry.gate import decide, markdown, unchanged

N = 2000


def binned(q: np.ndarray, k: int) -> np.ndarray:
    """Each score replaced by the mean of its quantile bin: calibrated, but coarser (a model
    with less resolution); fewer bins rank worse."""
    edges = np.quantile(q, np.linspace(0, 1, k + 1)[1:-1])
    which = np.digitize(q, edges)
    return np.array([q[which == i].mean() for i in range(k)])[which]


@pytest.fixture(scope="module")
def holdout() -> tuple[np.ndarray, pd.DataFrame, np.ndarray, np.ndarray]:
    """Labels drawn from a true probability q; slices; the champion is q in 3 bins."""
    rng = np.random.default_rng(0)
    q = rng.uniform(0.05, 0.95, N)
    y = (rng.uniform(size=N) < q).astype(int)
    slices = pd.DataFrame(
        {
            "contract": rng.choice(["Month-to-month", "One year", "Two year"], N),
            "senior_citizen": rng.choice([0.0, 1.0], N, p=[0.85, 0.15]),
        }
    )
    return y, slices, q, binned(q, 3)


CFG = GateParams(
    metric="roc_auc",
    margin=0.02,
    slices=["contract", "senior_citizen"],
    slice_tolerance=0.02,
    max_ece=0.05,
)
RULE = SliceRule(min_rows=50, min_class_rows=10)


def senior_regression(q: np.ndarray, slices: pd.DataFrame) -> np.ndarray:
    """The true probability everywhere except senior citizens, who get a 2-bin score."""
    senior = slices["senior_citizen"].to_numpy() == 1.0
    out = q.copy()
    out[senior] = binned(q[senior], 2)
    return out


def test_a_better_challenger_is_promoted(holdout):
    y, slices, q, champion = holdout
    result = decide(y, q, champion, slices, CFG, rule=RULE)
    assert result.decision == "promoted" and result.promote, result.reasons
    assert result.gain is not None and result.gain >= CFG.margin
    assert result.challenger["roc_auc"] > result.champion["roc_auc"]  # type: ignore[index]
    assert {s.status for s in result.slices} == {"ok"}


def test_a_worse_challenger_is_not_promoted(holdout):
    y, slices, q, champion = holdout
    result = decide(y, binned(q, 2), champion, slices, CFG, rule=RULE)
    assert result.decision == "rejected" and not result.promote
    assert result.gain is not None and result.gain < 0
    assert any("short of the margin" in r for r in result.reasons)


def test_a_challenger_better_by_less_than_the_margin_is_not_promoted(holdout):
    y, slices, q, champion = holdout
    result = decide(y, binned(q, 4), champion, slices, CFG, rule=RULE)
    assert result.gain is not None and 0 < result.gain < CFG.margin
    assert not result.promote


def test_a_slice_regression_blocks_promotion(holdout):
    y, slices, q, champion = holdout
    result = decide(y, senior_regression(q, slices), champion, slices, CFG, rule=RULE)
    assert result.gain is not None and result.gain >= CFG.margin  # overall it is better
    assert not result.promote
    regressed = [s for s in result.slices if s.status == "regressed"]
    assert [(s.column, s.value) for s in regressed] == [("senior_citizen", "1")]
    assert any("slice senior_citizen=1" in r for r in result.reasons)
    # The same scores pass once the slice is not declared.
    assert decide(
        y, senior_regression(q, slices), champion, slices[["contract"]], CFG, rule=RULE
    ).promote


def test_small_or_one_sided_slices_are_reported_but_do_not_gate(holdout):
    y, slices, q, champion = holdout
    challenger = senior_regression(q, slices)
    seniors = int((slices["senior_citizen"] == 1.0).sum())
    few_rows = SliceRule(min_rows=seniors + 1, min_class_rows=10)
    assert decide(y, challenger, champion, slices, CFG, rule=few_rows).promote
    few_per_class = SliceRule(min_rows=50, min_class_rows=seniors // 2 + 1)
    result = decide(y, challenger, champion, slices, CFG, rule=few_per_class)
    assert result.promote
    senior = next(s for s in result.slices if (s.column, s.value) == ("senior_citizen", "1"))
    assert senior.status == "skipped" and senior.small and senior.name == "senior_citizen=1"


def test_calibration_out_of_bounds_blocks_promotion(holdout):
    y, slices, q, champion = holdout
    # A monotone transform keeps every AUC of the better model but ruins its calibration.
    result = decide(y, q**3, champion, slices, CFG, rule=RULE)
    assert result.gain is not None and result.gain >= CFG.margin
    assert result.challenger["ece"] > CFG.max_ece  # type: ignore[operator]
    assert not result.promote
    assert any("above the bound" in r for r in result.reasons)


def test_without_a_champion_the_first_model_is_promoted(holdout):
    y, slices, q, _ = holdout
    result = decide(y, binned(q, 2), None, slices, CFG, rule=RULE)
    assert result.decision == "first" and result.promote
    assert result.champion is None and {s.status for s in result.slices} == {"reported"}


def test_lower_is_better_metrics_count_a_drop_as_a_gain(holdout):
    y, slices, q, champion = holdout
    cfg = CFG.model_copy(update={"metric": "brier", "margin": 0.001})
    result = decide(y, q, champion, slices, cfg, rule=RULE)
    assert result.challenger["brier"] < result.champion["brier"]  # type: ignore[index,operator]
    assert result.gain is not None and result.gain > 0 and result.promote
    assert gain("log_loss", 0.40, 0.42) == pytest.approx(0.02)
    assert gain("roc_auc", 0.80, 0.82) == pytest.approx(-0.02)


def test_a_negative_margin_accepts_a_slightly_worse_challenger(holdout):
    y, slices, q, champion = holdout
    cfg = CFG.model_copy(update={"margin": -0.1, "slice_tolerance": 0.2})
    result = decide(y, binned(q, 2), champion, slices, cfg, rule=RULE)
    assert result.gain is not None and -0.1 <= result.gain < 0 and result.promote


def test_undefined_metric_rejects(holdout):
    _, slices, q, champion = holdout
    ones = np.ones(10, dtype=int)
    result = decide(ones, q[:10], champion[:10], slices.head(10), CFG, rule=RULE)
    assert not result.promote and "undefined" in result.reasons[0]
    assert score("roc_auc", ones, champion[:10]) is None


def test_markdown_shows_decision_and_numbers(holdout):
    y, slices, q, champion = holdout
    result = decide(y, q, champion, slices, CFG, rule=RULE)
    text = markdown(result, "churn-model@v1.0.0", "challenger")
    assert "PROMOTED" in text and "churn-model@v1.0.0" in text
    assert "| contract=One year |" in text and "| senior_citizen=1 |" in text
    same = unchanged("roc_auc", 0.01, "churn-model@v1.0.0")
    assert not same.promote and "unchanged" in markdown(same, "churn-model@v1.0.0", "x")


def test_holdout_leaves_out_rows_seen_by_features_not_only_by_id():
    # Issue 12.5: copies of training rows under fresh ids passed an id-only filter.
    from retrain.registry.champion import unseen_rows

    train = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5], "c": ["a", "b", None]})
    test = pd.DataFrame(
        {
            "id": [10, 11, 12, 13, 3, 14],
            "x": [0.5, 9.0, 2.5, 9.0, 7.0, 8.0],
            "c": ["a", "a", None, "a", "b", "b"],
        }
    )
    keep, counts = unseen_rows(test, ["x", "c"], [train], "id")
    # 10 repeats train id 1's features, 12 id 3's (a gap equals a gap), 13 repeats 11 in
    # test, and 3 is a training id.
    assert keep.tolist() == [False, True, False, False, False, True]
    assert counts == {
        "excluded_seen_by_id": 1,
        "excluded_seen_by_features": 2,
        "excluded_repeated_in_test": 1,
    }
    keep, counts = unseen_rows(test.drop(columns=["id"]), ["x", "c"], [train], None)
    assert keep.tolist() == [False, True, False, False, True, True]  # a table without ids
