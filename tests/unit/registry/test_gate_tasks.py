"""The gate on multiclass and regression predictions (retrain.task's shapes), crafted so that
each rule decides: the metric's direction, evidence per class (multiclass) or rows only
(regression), the top-class ECE and the conformal interval's coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from retrain.analysis.calibration import ConformalInterval
from retrain.analysis.slices import SliceRule
from retrain.config import GateParams
from retrain.orchestration.runview import gate_outcome
from retrain.registry.gate import decide, markdown, too_little_evidence
from retrain.task import MulticlassTask, RegressionTask

N = 1500
RULE = SliceRule(min_rows=50, min_class_rows=10)
MULTI = MulticlassTask(["F", "L", "M", "VF"])
REG = RegressionTask()


def _slices(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({"region": rng.choice(["north", "south"], n)})


@pytest.fixture(scope="module")
def multiclass() -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Classes drawn from true probabilities p (rows x 4, imbalanced)."""
    rng = np.random.default_rng(0)
    p = softmax(rng.normal(0, 1.5, (N, 4)) + np.log([0.4, 0.1, 0.2, 0.3]), axis=1)
    y = np.array([rng.choice(4, p=row) for row in p])
    return y, p, _slices(rng, N)


def _blurred(p: np.ndarray, share: float) -> np.ndarray:
    """Mixed with the uniform prediction: still calibrated-ish but less informative."""
    return (1 - share) * p + share / p.shape[1]


CFG_MULTI = GateParams(metric="log_loss", margin=0.01, slices=["region"], max_ece=0.05)


def test_multiclass_a_better_challenger_is_promoted_by_lower_log_loss(multiclass):
    y, p, slices = multiclass
    result = decide(y, p, _blurred(p, 0.6), slices, CFG_MULTI, rule=RULE, task=MULTI)
    assert result.decision == "promoted", result.reasons
    ours, theirs = result.challenger["log_loss"], result.champion["log_loss"]  # type: ignore[index]
    assert ours is not None and theirs is not None and ours < theirs
    assert result.gain == pytest.approx(theirs - ours, abs=1e-6) and result.gain > 0
    assert result.interval is not None and result.interval[0] > 0
    assert result.positives is None and result.class_rows == {
        c: int((y == i).sum()) for i, c in enumerate(MULTI.classes)
    }
    assert any(r.startswith("ECE of the top class") for r in result.reasons)
    assert "| ece (top class) |" in markdown(result, "v1", "v2", 0.05)
    assert result.to_dict()["task"] == "multiclass"


def test_multiclass_a_worse_challenger_is_rejected(multiclass):
    y, p, slices = multiclass
    result = decide(y, _blurred(p, 0.6), p, slices, CFG_MULTI, rule=RULE, task=MULTI)
    assert result.decision == "rejected" and result.gain is not None and result.gain < 0


def test_multiclass_the_paired_bootstrap_keeps_each_row_s_probabilities_together(multiclass):
    # roc_auc_ovr is the gate's metric: higher is better, every resample scores whole rows.
    y, p, slices = multiclass
    cfg = CFG_MULTI.model_copy(update={"metric": "roc_auc_ovr", "margin": 0.0})
    result = decide(y, p, _blurred(p, 0.6), slices, cfg, rule=RULE, task=MULTI)
    # Mixing with the uniform prediction keeps each class's ranking: AUC unchanged, gain 0.
    assert result.gain == pytest.approx(0.0, abs=1e-6)
    shuffled = p[np.random.default_rng(1).permutation(N)]
    worse = decide(y, shuffled, p, slices, cfg, rule=RULE, task=MULTI)
    assert worse.decision == "rejected" and worse.gain is not None and worse.gain < -0.1


def test_multiclass_min_class_rows_holds_for_every_class(multiclass):
    y, p, slices = multiclass
    rare = np.flatnonzero(y == 1)[:5]  # keep 5 rows of class L only
    keep = np.isin(np.arange(N), rare) | (y != 1)
    result = decide(
        y[keep], p[keep], _blurred(p, 0.6)[keep], slices[keep], CFG_MULTI, rule=RULE, task=MULTI
    )
    assert result.decision == "insufficient" and not result.promote
    assert "L 5" in result.reasons[0] and "50 of each class" in result.reasons[0]


def test_multiclass_top_class_ece_blocks_an_overconfident_challenger(multiclass):
    y, p, slices = multiclass
    sharp = softmax(4 * np.log(p), axis=1)  # same ranking, far too sure
    cfg = CFG_MULTI.model_copy(
        update={"metric": "roc_auc_ovr", "margin": -0.01, "tolerance": 0.05}
    )
    result = decide(y, sharp, p, slices, cfg, rule=RULE, task=MULTI)
    assert result.decision == "rejected", result.reasons
    assert any("ECE of the top class" in r and "above the bound" in r for r in result.reasons)
    assert gate_outcome(result.decision, result.reasons)[0] == "Not promoted: ECE"


@pytest.fixture(scope="module")
def regression() -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Values = f + noise(sd 10); the model that predicts f is the best one."""
    rng = np.random.default_rng(2)
    f = rng.uniform(50, 150, N)
    return f + rng.normal(0, 10, N), f, _slices(rng, N)


CFG_REG = GateParams(metric="rmse", margin=0.1, slices=["region"], min_class_rows=10_000)
# 1.645 sd of the noise: a 90% interval.
GOOD = ConformalInterval(level=0.9, half_width=16.45, n_val=600)


def test_regression_promotes_by_lower_rmse_and_ignores_min_class_rows(regression):
    y, f, slices = regression
    # min_class_rows is 10,000: a classification holdout of 1,500 rows would be insufficient.
    result = decide(y, f, f + 8.0, slices, CFG_REG, rule=RULE, task=REG, interval=GOOD)
    assert result.decision == "promoted", result.reasons
    assert result.gain is not None and result.gain > 0
    assert result.challenger["rmse"] == pytest.approx(np.sqrt(np.mean((y - f) ** 2)), abs=1e-6)
    assert 0.88 <= result.challenger["coverage"] <= 0.92  # type: ignore[operator]
    assert "ece" not in result.challenger and result.interval_coverage is not None
    assert too_little_evidence(y[:499], CFG_REG, REG) is not None  # min_rows still holds


def test_regression_a_narrow_interval_is_refused_and_the_decision_says_why(regression):
    y, f, slices = regression
    narrow = ConformalInterval(level=0.9, half_width=10.0, n_val=600)  # covers ~68%
    result = decide(y, f, f + 8.0, slices, CFG_REG, rule=RULE, task=REG, interval=narrow)
    assert result.decision == "rejected" and not result.promote
    why = next(r for r in result.reasons if "coverage" in r)
    assert "misses its level" in why and "coverage_tolerance 0.02" in why
    # The run's state names the failed rule (not the metric, which passed).
    assert gate_outcome(result.decision, result.reasons)[0] == "Not promoted: coverage"
    assert "| coverage |" in markdown(result, "v1", "v2")


def test_regression_without_an_interval_file_is_not_promoted(regression):
    y, f, slices = regression
    result = decide(y, f, f + 8.0, slices, CFG_REG, rule=RULE, task=REG)
    assert result.decision == "rejected"
    assert any("no interval file" in r for r in result.reasons)
    assert gate_outcome(result.decision, result.reasons)[0] == "Not promoted: coverage"


def test_regression_first_model_notes_a_missed_coverage(regression):
    y, f, slices = regression
    narrow = ConformalInterval(level=0.9, half_width=10.0, n_val=600)
    result = decide(y, f, None, slices, CFG_REG, rule=RULE, task=REG, interval=narrow)
    assert result.decision == "first" and result.promote
    assert any(r.startswith("note: coverage") for r in result.reasons)
    assert "task" in result.rules and "interval coverage within" in result.rules["promote_if"]


def test_the_challenger_s_interval_is_read_for_regression_only(tmp_path):
    import json

    from retrain.config import load_params
    from retrain.errors import RetrainError
    from retrain.registry.champion import challenger_interval
    from tests.conftest import REPO

    params = load_params(REPO / "params.yaml")
    path = tmp_path / "intervals.json"
    paths = params.paths.model_copy(update={"intervals": path})
    regression = params.model_copy(
        update={
            "paths": paths,
            "dataset": params.dataset.model_copy(update={"task": "regression"}),
        }
    )
    assert challenger_interval(regression) is None  # no file: the gate says so, rejects
    path.write_text(json.dumps({"level": 0.9, "half_width": 3.5, "n_val": 200}))
    assert challenger_interval(regression) == ConformalInterval(0.9, 3.5, 200)
    path.write_text(json.dumps({"level": 0.8, "half_width": 3.5, "n_val": 200}))
    with pytest.raises(RetrainError, match="level 0.8 is not train.interval_level 0.9"):
        challenger_interval(regression)
    # A classifier's file (nulls, as `train` writes it) is never read.
    path.write_text(json.dumps({"level": None, "half_width": None, "n_val": 200}))
    binary = params.model_copy(update={"paths": paths})
    assert challenger_interval(binary) is None
