"""`retrain init`'s decisions on a crafted table: each column's role with its reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.init import InitError, profile


def crafted(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    income = np.round(rng.normal(3000, 500, n), 2)
    income[:7] = np.nan
    return pd.DataFrame(
        {
            "AccountID": [f"A{i:05d}" for i in range(n)],
            "comment": [f"called on day {i} about the invoice {i * 7}" for i in range(n)],
            "age": rng.integers(18, 90, n),
            "income": income,
            "country": "NL",
            "plan": rng.choice(["basic", "plus", "pro"], n),
            "is_member": rng.choice([0, 1], n),
            "segment": rng.choice([f"s{i}" for i in range(80)], n),
            "left": rng.choice(["stayed", "left"], n, p=[0.8, 0.2]),
        }
    )


def test_profile_decides_each_column_with_a_reason():
    p = profile(crafted(), target="left", name="accounts")
    assert p.id_column == "AccountID"
    assert p.numeric == ["age", "income", "is_member"]
    # segment's 79 levels (of 80 drawn) are too many to one-hot encode: kept, target +
    # frequency encoded (issue 27: such a column used to be left out).
    assert p.categorical == ["plan", "segment"] and p.high_cardinality == ["segment"]
    assert p.reasons["segment"].startswith("text with 79 levels: target + frequency encoded")
    assert set(p.left_out) == {"comment", "country"}
    assert "free text" in p.left_out["comment"]
    assert "constant" in p.left_out["country"]
    # No affirmative value: the rarer class is the positive one, and the reason says so.
    assert p.positive_class == "left" and "rarer" in p.reasons["left"]
    assert p.fill_values == {"income": pytest.approx(crafted()["income"].median())}
    assert p.slices == ["plan"]


def test_positive_class_given_or_affirmative():
    df = crafted().assign(left=lambda d: np.where(d["left"] == "left", "Yes", "No"))
    assert profile(df, target="left", name="x").positive_class == "Yes"
    assert profile(df, target="left", name="x", positive_class="No").positive_class == "No"
    with pytest.raises(InitError, match=r"--positive-class 'yes' never occurs in column 'left'"):
        profile(df, target="left", name="x", positive_class="yes")
    with pytest.raises(InitError, match=r"column 'plan' \(target\) has 3 distinct values"):
        profile(df, target="plan", name="x", task="binary")
    with pytest.raises(InitError, match=r"--target 'lft' is not a column"):
        profile(df, target="lft", name="x")
