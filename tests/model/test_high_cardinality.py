"""A 200-level categorical column whose level carries the label (issue 27): `retrain init`
keeps it (it used to drop it as "too sparse to one-hot encode"), `prepare` target + frequency
encodes it, and the network and tuned LightGBM both score better on test with it than on
the same table with it dropped. Seconds: a 2,400-row table, tiny budgets."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from retrain.config import LightGBMBudget, ModelParams, Params
from retrain.data.splits import load_splits
from retrain.init import profile
from retrain.init.command import report
from retrain.models.baselines import scores, tuned_lightgbm
from retrain.models.predictor import Predictor
from retrain.models.training import fit
from retrain.stages import prepare, tune
from retrain.stages import train as train_stage
from tests.conftest import params_in, small_overrides, telco_params

pytestmark = pytest.mark.model

HP = ModelParams(
    hidden_dim=32, n_layers=1, dropout=0.0, lr=0.005, weight_decay=0, batch_size=64, k=4
)


def city_table(n: int = 2400, seed: int = 0) -> pd.DataFrame:
    """Noise columns and `city`, 200 levels whose effect sets most of the label's odds."""
    rng = np.random.default_rng(seed)
    effect = rng.normal(0, 2.0, 200)
    city = rng.integers(0, 200, n)
    x1 = rng.normal(size=n)
    logit = effect[city] + 0.3 * x1
    label = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "city": [f"c{i:03d}" for i in city],
            "x1": x1.round(4),
            "noise": rng.normal(size=n).round(4),
            "plan": rng.choice(["a", "b", "c"], n),
            "label": np.where(label, "yes", "no"),
        }
    )


def _params(tmp: Path, df: pd.DataFrame, *, drop_city: bool) -> Params:
    """What `retrain init` decides for the table; `drop_city`: the column left out, as
    init did before issue 27."""
    p = profile(df, target="label", name="cities")
    tmp.mkdir(parents=True, exist_ok=True)
    csv = tmp / "cities.csv"
    df.to_csv(csv, index=False)
    raw = copy.deepcopy(small_overrides(telco_params()))
    categorical = [c for c in p.categorical if not (drop_city and c == "city")]
    raw["dataset"] = {
        "name": "cities",
        "suite": raw["dataset"]["suite"],
        "target": "label",
        "positive_class": p.positive_class,
        "numeric": p.numeric,
        "categorical": categorical,
        "high_cardinality": [] if drop_city else p.high_cardinality,
    }
    raw["paths"]["raw_data"] = str(csv)
    raw["prepare"]["fill_values"] = {}
    raw["registry"]["gate"]["slices"] = []
    raw["report"]["slices"] = []
    return params_in(tmp, raw)


def _test_aucs(params: Params) -> tuple[float, float]:
    """(network, tuned LightGBM) test ROC AUC after `prepare` on `params`."""
    prepare.run(params)
    splits = load_splits(params.paths)
    train, val, test = (splits.matrix(s) for s in ("train", "val", "test"))
    result = fit(
        train, val, HP, seed=0, max_epochs=15, patience=4, accelerator="cpu", num_threads=1,
        groups=splits.preprocessor.groups(),
    )  # fmt: skip
    import torch

    with torch.no_grad():
        proba = result.module.network(torch.as_tensor(test[0])).sigmoid().double().numpy()
    budget = LightGBMBudget(n_trials=2, n_estimators=200, early_stopping_rounds=20)
    booster = tuned_lightgbm(train, val, budget, seed=0)
    return (
        float(roc_auc_score(test[1], proba.ravel())),
        float(roc_auc_score(test[1], scores(booster, test[0]))),
    )


def test_a_200_level_column_is_kept_encoded_and_lifts_both_models(tmp_path):
    df = city_table()
    p = profile(df, target="label", name="cities")
    assert "city" in p.categorical and p.high_cardinality == ["city"]
    lines: list[str] = []
    report(df, p, [], lines.append)  # what `retrain init` prints
    assert any(
        re.fullmatch(
            r"\s*city\s+categorical\s+text with 200 levels: target \+ frequency "
            r"encoded \(more than 50 levels; .*\)",
            line,
        )
        for line in lines
    ), lines

    kept = _params(tmp_path / "kept", df, drop_city=False)
    net, booster = _test_aucs(kept)
    splits = load_splits(kept.paths, ("train",))
    pre, train = splits.preprocessor, splits.frames["train"]
    assert pre.encoded_columns == ["city"]
    # Every model trains on the out-of-fold encoding, never on the full split's means.
    np.testing.assert_array_equal(
        splits.matrix("train")[0], pre.training_matrix(train, splits.matrix("train")[1])
    )
    assert not np.array_equal(splits.matrix("train")[0], pre.transform(train))
    assert pre.feature_names[-2:] == ["city:target", "city:frequency"]
    dropped = _params(tmp_path / "dropped", df, drop_city=True)
    net_without, booster_without = _test_aucs(dropped)
    # The level sets most of the odds: without it both models are near a coin flip.
    assert net > net_without + 0.15, (net, net_without)
    assert booster > booster_without + 0.15, (booster, booster_without)

    # The `train` stage's exported model (ONNX + preprocessor.json, as the predict flow and
    # `retrain serve` load it) scores a city never seen in training, and a blank one.
    untuned = kept.model_copy(update={"tune": kept.tune.model_copy(update={"n_trials": 0})})
    tune.run(untuned)
    train_stage.run(untuned)
    rows = load_splits(kept.paths, ("test",)).frames["test"].head(3).copy()
    rows["city"] = ["nowhere", None, rows["city"].iloc[2]]
    scored = Predictor(kept.paths.preprocessor, kept.paths.onnx_model).predict(rows)
    assert scored.shape == (3,) and np.isfinite(scored).all()
    prior = pre.transform(rows.iloc[[0]])  # the unseen city: the prior, frequency 0
    np.testing.assert_array_equal(prior[0, -2:], pre.transform(rows.iloc[[1]])[0, -2:])


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_prepare_encodes_the_column_for_the_other_tasks(tmp_path, task):
    """multiclass: one share column per class, in dataset.classes order; regression: the mean
    of the target standardised as the network learns it. The test rows' encoding carries the
    level's signal (scored with the training split's means)."""
    rng = np.random.default_rng(1)
    n, effect = 2400, rng.normal(0, 1.0, 200)
    city = rng.integers(0, 200, n)
    value = effect[city] + 0.3 * rng.normal(size=n)
    classes = ["lo", "mid", "hi"]
    target = np.array(classes)[np.digitize(value, [-0.5, 0.5])] if task == "multiclass" else value
    df = pd.DataFrame({"city": [f"c{i:03d}" for i in city], "x1": rng.normal(size=n), "y": target})
    csv = tmp_path / "t.csv"
    df.to_csv(csv, index=False)
    p = profile(df, target="y", name="t", task=task)
    assert p.high_cardinality == ["city"] and p.task == task
    raw = copy.deepcopy(small_overrides(telco_params()))
    raw["dataset"] = {
        "name": "t", "suite": raw["dataset"]["suite"], "target": "y", "task": task,
        "numeric": ["x1"], "categorical": ["city"], "high_cardinality": ["city"],
        **({"classes": classes} if task == "multiclass" else {}),
    }  # fmt: skip
    raw["paths"]["raw_data"] = str(csv)
    raw["prepare"]["fill_values"] = {}
    raw["registry"]["gate"] = {"slices": []}
    raw["report"]["slices"] = []
    params = params_in(tmp_path, raw)
    prepare.run(params)
    splits = load_splits(params.paths, ("train", "test"))
    pre = splits.preprocessor
    width = pre.encoded.width() if pre.encoded else 0
    if task == "multiclass":
        assert pre.feature_names[-4:] == [*(f"city:target={c}" for c in classes), "city:frequency"]
    else:
        assert pre.encoded and pre.target
        assert pre.encoded.scale == [pre.target["mean"], pre.target["std"]]
        assert pre.feature_names[-2:] == ["city:target", "city:frequency"]
    # The test rows' encoding (the training split's means) carries the level's signal, and so
    # does the training rows' (out of fold: a little weaker, never their own label).
    for split, floor in (("test", 0.2), ("train", 0.15)):
        x, y = splits.matrix(split)
        block = x[:, -width:]
        assert x.shape[1] == pre.n_features
        if task == "multiclass":
            col = pre.encoded.columns["city"] if pre.encoded else None
            assert col is not None  # the class shares on their own scale, then the likeliest
            shares = block[:, :3] * np.asarray(col.std[:3]) + np.asarray(col.mean[:3])
            hits = (shares.argmax(axis=1) == y).mean()
            majority = np.bincount(y.astype(int)).max() / len(y)
            assert hits > majority + floor, (split, hits, majority)
        else:
            assert np.corrcoef(block[:, 0], y)[0, 1] > 0.6 + floor, split
