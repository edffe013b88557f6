"""Attributions of a model trained on a synthetic table whose true driver is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from retrain.analysis.attributions import (
    baseline_row,
    global_attributions,
    integrated_gradients,
    source_columns,
)
from retrain.config import ModelParams
from retrain.data.preprocess import Preprocessor
from retrain.models.training import fit

pytestmark = pytest.mark.model

NUMERIC = ["usage", "age", "noise"]
CATEGORICAL = ["plan", "region"]
# The architecture of params.yaml, smaller: an ensemble over piecewise-linear embeddings.
HP = ModelParams(
    hidden_dim=16,
    n_layers=1,
    dropout=0.0,
    lr=0.01,
    weight_decay=0.0,
    batch_size=128,
    k=4,
    num_embeddings="ple",
    n_bins=16,
    d_embedding=4,
    grad_clip=1.0,
)


def _table(driver: str, n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "usage": rng.normal(50, 10, n),
            "age": rng.normal(40, 12, n),
            "noise": rng.normal(0, 1, n),
            # Five levels: the driver's effect is spread over five one-hot fragments.
            "plan": rng.choice(["a", "b", "c", "d", "e"], n),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )
    if driver == "usage":
        logit = (df["usage"] - 50) / 4
    else:
        logit = df["plan"].map({"a": -3.0, "b": -1.5, "c": 0.0, "d": 1.5, "e": 3.0})
    logit = logit + 0.3 * (df["age"] - 40) / 12  # a weak second signal
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit.to_numpy()))).astype(np.float32)
    return df, y


@pytest.fixture(scope="module", params=["usage", "plan"])
def trained(request):
    driver = request.param
    train, y_train = _table(driver, 3000, seed=1)
    val, y_val = _table(driver, 1000, seed=2)
    pre = Preprocessor.fit(train, NUMERIC, CATEGORICAL, HP.n_bins)
    result = fit(
        (pre.transform(train), y_train),
        (pre.transform(val), y_val),
        HP,
        seed=0,
        max_epochs=15,
        patience=5,
        num_threads=1,
        bins=pre.embedded(),
        groups=pre.groups(),
    )
    assert result.module.network.embed is not None
    test, _ = _table(driver, 300, seed=3)
    x_train, x_test = pre.transform(train), pre.transform(test)
    attributions = integrated_gradients(
        result.module.network,
        x_test,
        baseline_row(x_train, "train_mean"),
        source_columns(pre),
        # Piecewise-linear embeddings make the gradient jump at every bin edge, so the
        # integral converges as 1/steps: 50 steps left completeness errors up to 0.15 logit
        # here, 200 up to 0.04-0.05 (it depends on the trained network; params.yaml
        # report.ig_steps), 400 about half that.
        n_steps=400,
    )
    return driver, result, attributions, x_test


def test_the_true_driver_is_the_top_attribution(trained):
    driver, result, attributions, _ = trained
    assert result.best_score > 0.75  # the model learned the signal at all
    ranked = global_attributions(attributions)
    assert ranked[0]["column"] == driver
    assert ranked[0]["share"] > 0.5
    assert ranked[1]["column"] == "age"  # the weak second signal comes next
    unrelated = {"usage", "noise", "plan", "region"} - {driver}
    assert {r["column"] for r in ranked[2:]} == unrelated


def test_attributions_are_per_original_column_and_add_up_to_the_logit_change(trained):
    _, result, attributions, x_test = trained
    # One-hot fragments are summed back: one attribution per original column, no "plan=a".
    assert attributions.columns == [*NUMERIC, *CATEGORICAL]
    assert attributions.values.shape == (len(x_test), len(NUMERIC) + len(CATEGORICAL))
    with torch.no_grad():
        logits = result.module(torch.as_tensor(x_test)).double().numpy()
    np.testing.assert_allclose(attributions.logits, logits, atol=1e-5)
    # Completeness: each row's attributions sum to logit(row) - logit(baseline).
    gap = attributions.values.sum(axis=1) - (logits - attributions.baseline_logit)
    np.testing.assert_allclose(gap, attributions.delta, atol=1e-4)
    assert np.abs(gap).max() < 0.05


def test_source_columns_follow_the_design_matrix():
    df, _ = _table("usage", 50, seed=0)
    pre = Preprocessor.fit(df, NUMERIC, CATEGORICAL)
    sources = source_columns(pre)
    assert len(sources) == pre.n_features
    for name, source in zip(pre.feature_names, sources, strict=True):
        assert name == source or name.startswith(f"{source}=")
