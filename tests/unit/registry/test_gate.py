"""The champion/challenger gate on crafted scores: each rule blocks when, and only when, it
should."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.analysis.slices import SliceRule
from retrain.config import GateParams
from retrain.models.metrics import gain, score
from retrain.orchestration.runview import gate_outcome
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
    cfg = CFG.model_copy(update={"margin": -0.1, "tolerance": 0.1, "slice_tolerance": 0.2})
    result = decide(y, binned(q, 2), champion, slices, cfg, rule=RULE)
    assert result.gain is not None and -0.1 <= result.gain < 0 and result.promote


def test_undefined_metric_rejects(holdout):
    _, slices, q, champion = holdout
    ones = np.ones(10, dtype=int)
    no_minimum = CFG.model_copy(update={"min_rows": 0, "min_class_rows": 0})
    result = decide(ones, q[:10], champion[:10], slices.head(10), no_minimum, rule=RULE)
    assert result.decision == "rejected" and "undefined" in result.reasons[0]
    assert score("roc_auc", ones, champion[:10]) is None
    # With the default minimum of evidence, ten rows of one class are too little to judge.
    result = decide(ones, q[:10], champion[:10], slices.head(10), CFG, rule=RULE)
    assert result.decision == "insufficient" and not result.promote
    assert result.reasons == [
        "too little evidence, n = 10 (10 positives, 0 negatives; the gate judges from 500 "
        "rows and 50 of each class: registry.gate.min_rows, min_class_rows)"
    ]


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


def test_too_little_evidence_is_its_own_outcome_not_a_coin_flip(holdout):
    # Issue 27: a drift-triggered retrain was judged on 380 rows and +0.0012 ROC AUC. A
    # clearly better challenger on 380 rows is still not judged: the holdout is too small.
    y, slices, q, champion = holdout
    n = 380
    result = decide(y[:n], q[:n], champion[:n], slices.head(n), CFG, rule=RULE, seed=1)
    assert result.decision == "insufficient" and not result.promote
    assert result.reasons[0].startswith(f"too little evidence, n = {n} (")
    # The numbers are still reported: the gain, its interval, the holdout's size.
    assert result.gain is not None and result.gain > CFG.margin
    assert result.interval is not None and result.rows == n
    assert result.positives == int(y[:n].sum())
    name, message, rejected = gate_outcome(result.decision, result.reasons)
    assert name == "Not promoted: too little evidence" and rejected
    assert message.startswith(f"Not promoted: too little evidence, n = {n} (")
    assert "too little evidence" in markdown(result, "churn-model@v1.0.0", "challenger")
    # The same scores on all 2,000 rows are judged, and promoted.
    assert decide(y, q, champion, slices, CFG, rule=RULE, seed=1).decision == "promoted"


def test_a_gain_within_noise_is_not_promoted_however_large_the_margin_allows(holdout):
    # A challenger that is the champion plus noise: its point estimate may clear a zero
    # margin by luck, but the interval says it is not sure.
    y, slices, q, _ = holdout
    rng = np.random.default_rng(3)
    base = np.clip(q + rng.normal(0, 0.05, len(q)), 0.01, 0.99)
    twin = np.clip(q + rng.normal(0, 0.05, len(q)), 0.01, 0.99)
    cfg = CFG.model_copy(update={"margin": -0.01, "max_ece": 1.0})
    result = decide(y, twin, base, slices[[]], cfg, rule=RULE, seed=0)
    assert result.gain is not None and result.gain >= cfg.margin
    assert result.interval is not None and result.interval[0] < 0 < result.interval[1]
    assert not result.promote and any("too uncertain" in r for r in result.reasons)


def test_the_interval_and_n_are_in_the_result_the_reasons_and_the_markdown(holdout):
    y, slices, q, champion = holdout
    result = decide(y, q, champion, slices, CFG, rule=RULE, seed=7)
    assert result.promote and result.interval is not None and result.confidence == 0.95
    low, high = result.interval
    assert result.gain is not None and low < result.gain < high and low > 0
    first = result.reasons[0]
    assert f"95% CI [{low:+.4f}, {high:+.4f}], n = {N}" in first
    assert result.rules["resamples"] == CFG.resamples and result.rules["seed"] == 7
    as_dict = result.to_dict()
    assert as_dict["interval"] == [low, high] and as_dict["rows"] == N
    text = markdown(result, "churn-model@v1.0.0", "challenger")
    assert f"CI [{low:+.4f}, {high:+.4f}]" in text and f"n = {N}" in text
    # Seeded: the same seed gives the same interval bit for bit, another seed another one.
    again = decide(y, q, champion, slices, CFG, rule=RULE, seed=7)
    assert again.interval == result.interval
    assert decide(y, q, champion, slices, CFG, rule=RULE, seed=8).interval != result.interval


VAR_E = 0.05


def binormal(
    rng: np.random.Generator, n: int, auc_gain: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two score vectors whose true ROC AUCs are 0.84 and 0.84 + auc_gain.

    Binormal scores: s = mu * y + u + e, with u ~ N(0, 1) shared by both models (what they
    both learnt) and e ~ N(0, VAR_E) their own; the AUC is then Phi(mu / sqrt(2 (1 +
    VAR_E))), exactly. VAR_E = 0.05 (scores correlated 0.95 within a class) is how close two
    models trained on overlapping data are: bench 7's Telco ours - LightGBM differences have
    sd 0.0027 over 20 splits of ~1,050 test rows, about 0.002 at n = 2,000; this design's
    paired difference has sd ~0.003, so it is the harder case. 26.5% positives, as Telco.
    """
    from scipy.stats import norm

    scale = np.sqrt(2 * (1 + VAR_E))
    mu0, mu1 = norm.ppf(0.84) * scale, norm.ppf(0.84 + auc_gain) * scale
    y = (rng.uniform(size=n) < 0.265).astype(int)
    shared = rng.normal(size=n)
    own = rng.normal(scale=np.sqrt(VAR_E), size=(2, n))
    champion, challenger = mu0 * y + shared + own[0], mu1 * y + shared + own[1]
    # Probabilities (a monotone map keeps the AUC); the calibration check is not under test.
    return y, 1 / (1 + np.exp(-challenger)), 1 / (1 + np.exp(-champion))


def promotion_rate(auc_gain: float, trials: int, cfg: GateParams) -> float:
    rng = np.random.default_rng(2026)
    no_slices = pd.DataFrame(index=range(2000))
    promoted = 0
    for trial in range(trials):
        y, challenger, champion = binormal(rng, 2000, auc_gain)
        result = decide(y, challenger, champion, no_slices, cfg, rule=RULE, seed=trial)
        promoted += result.promote
    return promoted / trials


def test_the_gate_promotes_at_the_rate_its_interval_promises():
    # Issue 27: over 200 seeded trials a null difference (equal true AUC) is promoted in at
    # most 5%, a true +0.01 at n = 2,000 in at least 80%. The rule is params.yaml's defaults
    # (confidence, tolerance, margin, minimum evidence); only the resamples are fewer, to
    # keep the test quick (the percentile interval is the same code).
    # The design is what it says: true AUCs 0.84 and 0.85 (on a million rows).
    y, challenger, champion = binormal(np.random.default_rng(0), 1_000_000, 0.01)
    assert score("roc_auc", y, champion) == pytest.approx(0.84, abs=0.001)
    assert score("roc_auc", y, challenger) == pytest.approx(0.85, abs=0.001)
    defaults = GateParams(metric="roc_auc")
    cfg = defaults.model_copy(update={"resamples": 200, "max_ece": 1.0})
    null = promotion_rate(0.0, 200, cfg)
    power = promotion_rate(0.01, 200, cfg)
    print(f"promoted: null {null:.1%}, +0.01 AUC at n = 2000 {power:.1%}")
    assert null <= 0.05
    assert power >= 0.80


def test_the_prefect_artifacts_and_the_record_card_show_the_interval_and_n(holdout):
    from retrain.orchestration.artifacts import record_markdown

    y, slices, q, champion = holdout
    result = decide(y, q, champion, slices, CFG, rule=RULE, seed=3)
    assert result.interval is not None
    low, high = result.interval
    shown = f"95% CI [{low:+.4f}, {high:+.4f}]"
    # The gate artifact (the metrics table beside it leaves the interval to it: issue 28).
    text = markdown(result, "churn-model@v1.0.0", "challenger")
    assert shown in text and f"n = {N}" in text
    record = {
        "run_id": "20260101T000000Z-abcd",
        "reason": "drift",
        "code_revision": "0123456789abcdef",
        "data": {"md5": "d41d8", "batches": []},
        "gate": result.to_dict(),
        "metrics": {"roc_auc": 0.8355, "ece": 0.0612},
        "model": {"name": "churn-model", "version": "v2.0.0", "prod": "v2.0.0", "promoted": True},
    }
    card = record_markdown(record)
    assert f"- gate: promoted, roc_auc ours - production {result.gain:+.4f}, {shown}" in card
    assert f"n = {N}" in card
    # The flow's final message (what the notification sends) carries them too.
    name, message, _ = gate_outcome(result.decision, result.reasons)
    assert name == "Promoted" and shown in message and f"n = {N}" in message
    # An old record (no interval, no decision) still renders.
    old = {**record, "gate": {"metric": "roc_auc"}}
    assert "- gate:" not in record_markdown(old)
