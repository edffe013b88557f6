"""Behaviour of a trained model: minimum quality, direction, invariance, exported parity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from retrain.data.splits import load_splits
from retrain.models.export import export_onnx
from retrain.models.predictor import Predictor
from retrain.models.training import fit
from retrain.stages import prepare
from tests.conftest import params_in

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def trained(tmp_path_factory, default_params_raw, raw_csv):
    tmp = tmp_path_factory.mktemp("model")
    params = params_in(tmp, default_params_raw)
    prepare.run(params)
    splits = load_splits(params.paths)
    result = fit(
        splits.matrix("train"),
        splits.matrix("val"),
        params.model,
        seed=params.seed,
        max_epochs=8,
        patience=4,
        num_threads=1,
        bins=splits.preprocessor.embedded(),
        groups=splits.preprocessor.groups(),
    )
    export_onnx(result.module.network, splits.preprocessor.n_features, params.paths.onnx_model)
    return params, splits, result, Predictor(params.paths.preprocessor, params.paths.onnx_model)


def test_minimum_quality_on_test(trained):
    _, splits, _, predictor = trained
    test = splits.frames["test"]
    auc = roc_auc_score(splits.matrix("test")[1], predictor.predict_proba(test))
    assert auc > 0.82


def test_onnx_matches_torch(trained):
    _, splits, result, predictor = trained
    x, _ = splits.matrix("test")
    with torch.no_grad():
        expected = result.module(torch.as_tensor(x)).sigmoid().numpy()
    np.testing.assert_allclose(predictor.predict_matrix(x), expected, atol=1e-5)


def test_id_column_is_not_an_input(trained):
    params, splits, _, predictor = trained
    test = splits.frames["test"].head(200)
    shuffled = test.assign(**{params.dataset.id_column: np.arange(200) + 10**6})
    np.testing.assert_array_equal(predictor.predict_proba(test), predictor.predict_proba(shuffled))


def test_longer_contract_lowers_churn_risk(trained):
    _, splits, _, predictor = trained
    base = splits.frames["test"].head(300)
    monthly = predictor.predict_proba(base.assign(contract="Month-to-month"))
    two_year = predictor.predict_proba(base.assign(contract="Two year"))
    assert (two_year < monthly).mean() > 0.9


def test_scores_are_probabilities(trained):
    _, splits, _, predictor = trained
    p = predictor.predict_proba(pd.concat([splits.frames["val"], splits.frames["test"]]))
    assert ((p > 0) & (p < 1)).all()


def test_the_network_embeds_numerics_with_the_prepared_bins(trained):
    # The bins `prepare` fitted (saved in preprocessor.json) are the network's, so the ONNX
    # model and serving use the same ones: each embedded column's encoding has slope
    # 1 / bin width on its bins.
    params, splits, result, _ = trained
    pre = splits.preprocessor
    embedded = pre.embedded()
    assert sorted(pre.bins) == ["monthly_charges", "tenure", "total_charges"]  # not the flags
    network = result.module.network
    assert network.embed is not None
    assert network.embedded.tolist() == sorted(embedded)
    weight = network.embed.impl.weight
    for row, column in enumerate(sorted(embedded)):
        edges = np.asarray(embedded[column])
        slopes = 1.0 / np.diff(edges)
        np.testing.assert_allclose(weight[row, : len(slopes) - 1].numpy(), slopes[:-1], rtol=1e-4)
        assert float(weight[row, -1]) == pytest.approx(slopes[-1], rel=1e-4)
    assert result.module.hparams["k"] == params.model.k == 32
