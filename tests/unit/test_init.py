"""`retrain init`'s decisions on a crafted table: each column's role with its reason, the
draft suite (built with GE's classes) passing on its own table, params that parse, and the
same bytes on a re-run."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from retrain.config import DatasetSchema, parse_params
from retrain.init import InitError, build_suite, profile, slug, update_params
from retrain.validation.suite import check_suite, validate_frame
from tests.conftest import REPO


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
    assert p.categorical == ["plan"]
    assert set(p.left_out) == {"comment", "country", "segment"}
    assert "free text" in p.left_out["comment"]
    assert "constant" in p.left_out["country"]
    assert "too sparse" in p.left_out["segment"]
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
        profile(df, target="plan", name="x")
    with pytest.raises(InitError, match=r"--target 'lft' is not a column"):
        profile(df, target="lft", name="x")


def test_draft_suite_is_valid_ge_and_passes_on_its_table(tmp_path):
    df = crafted()
    p = profile(df, target="left", name="accounts")
    suite = build_suite(df, p)
    check_suite("accounts.json", suite)  # every entry builds in GE
    assert all(
        e["meta"]["why"] and e["severity"] in ("critical", "warning")
        for e in suite["expectations"]
    )
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(suite))
    schema = DatasetSchema(
        name=p.name,
        suite=path,
        target=p.target,
        positive_class=p.positive_class,
        id_column=p.id_column,
        numeric=p.numeric,
        categorical=p.categorical,
    )
    assert validate_frame(df, path, "accounts.csv", schema=schema).success
    broken = df.assign(plan=df["plan"].where(df.index > 0, "platinum"))
    result = validate_frame(broken, path, "accounts.csv", schema=schema)
    assert not result.success and result.failures[0].column == "plan"
    assert build_suite(df, p) == suite  # deterministic


def test_params_update_parses_and_is_stable():
    df = crafted()
    p = profile(df, target="left", name=slug("My Accounts.csv"))
    text = (REPO / "params.yaml").read_text()
    once = update_params(text, p, Path("expectations/x.json"), "data/raw")
    twice = update_params(once, p, Path("expectations/x.json"), "data/raw")
    assert once == twice
    raw = yaml.safe_load(once)
    params = parse_params(copy.deepcopy(raw))
    assert params.dataset.name == "my_accounts_csv"
    assert params.dataset.id_column == "AccountID"
    assert params.prepare.fill_values.keys() == {"income"}
    assert params.report.slices == ["plan"] and params.registry.gate.slices == ["plan"]
    assert params.registry.model_name == "my-accounts-csv-model"
    assert "# text with 3 levels" in once  # the reason beside each column, for review
