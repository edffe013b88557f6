from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.data.clean import TARGET
from retrain.data.preprocess import Preprocessor
from retrain.stages import prepare
from tests.conftest import params_in


def _frame(values, levels):
    return pd.DataFrame({"x": values, "c": levels})


def test_fit_uses_only_the_given_rows():
    train = _frame([1.0, 2.0, 3.0, None], ["a", "b", "a", None])
    pre = Preprocessor.fit(train, ["x"], ["c"])
    assert pre.medians["x"] == 2.0
    assert pre.means["x"] == pytest.approx(2.0)  # the gap is filled with the median first
    assert pre.categories["c"] == ["__missing__", "a", "b"]


def test_transform_scales_and_one_hot_encodes_with_unseen_level_as_zeros():
    pre = Preprocessor.fit(_frame([0.0, 2.0], ["a", "b"]), ["x"], ["c"])
    out = pre.transform(_frame([1.0, 2.0, None], ["b", "zzz", "a"]))
    assert out.dtype == np.float32
    assert pre.feature_names == ["x", "c=a", "c=b"]
    np.testing.assert_allclose(out[:, 0], [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(out[:, 1:], [[0, 1], [0, 0], [1, 0]])


def test_save_load_roundtrip(tmp_path):
    pre = Preprocessor.fit(_frame([1.0, 5.0], ["a", "b"]), ["x"], ["c"])
    pre.save(tmp_path / "p.json")
    assert Preprocessor.load(tmp_path / "p.json") == pre


def test_prepare_fits_preprocessing_on_train_only(tmp_path, default_params_raw, raw_csv):
    params = params_in(tmp_path, default_params_raw)
    result = prepare.run(params)
    train = pd.read_parquet(params.paths.train)
    val = pd.read_parquet(params.paths.val)
    test = pd.read_parquet(params.paths.test)
    pre = Preprocessor.load(params.paths.preprocessor)
    for col in params.dataset.numeric:
        assert pre.means[col] == pytest.approx(train[col].mean())
    everything = pd.concat([train, val, test])
    assert pre.means["monthly_charges"] != pytest.approx(everything["monthly_charges"].mean())
    # Splits are disjoint, complete and stratified.
    ids = params.dataset.id_column
    assert len(set(train[ids]) | set(val[ids]) | set(test[ids])) == result.report.rows_out
    rates = [frame[TARGET].mean() for frame in (train, val, test)]
    assert max(rates) - min(rates) < 0.01
    assert result.report.filled == {"total_charges": 11}


def test_prepare_is_deterministic(tmp_path, default_params_raw, raw_csv):
    first = params_in(tmp_path / "a", default_params_raw)
    second = params_in(tmp_path / "b", default_params_raw)
    prepare.run(first)
    prepare.run(second)
    for name in ("train", "val", "test", "preprocessor"):
        a = getattr(first.paths, name).read_bytes()
        assert a == getattr(second.paths, name).read_bytes(), name


def test_bins_are_quantiles_of_the_training_rows_as_rtdl_computes_them():
    import torch
    from rtdl_num_embeddings import compute_bins

    rng = np.random.default_rng(0)
    train = pd.DataFrame(
        {
            "x": rng.lognormal(size=500),
            "few": rng.choice([1.0, 2.0, 3.0], 500),
            "flag": rng.choice([0.0, 1.0], 500),
            "c": "a",
        }
    )
    pre = Preprocessor.fit(train, ["x", "few", "flag"], ["c"], n_bins=8)
    assert set(pre.bins) == {"x", "few"}  # a 0/1 flag is passed through as it is
    assert pre.embedded() == {0: pre.bins["x"], 1: pre.bins["few"]}
    scaled = torch.tensor(pre.transform(train)[:, :2], dtype=torch.float64)
    want = compute_bins(scaled, n_bins=8)
    for got, ref in zip((pre.bins["x"], pre.bins["few"]), want, strict=True):
        np.testing.assert_allclose(got, ref.numpy(), rtol=1e-6, atol=1e-9)
    assert len(pre.bins["x"]) == 9 and len(pre.bins["few"]) == 3
    # Other rows, other quantiles: only the rows given to fit shape the bins.
    other = Preprocessor.fit(train.iloc[:250], ["x", "few", "flag"], ["c"], n_bins=8)
    assert other.bins["x"] != pre.bins["x"]
    assert Preprocessor.fit(train, ["x"], ["c"]).bins == {}  # no n_bins: no embedding


def test_a_column_with_one_bin_stays_a_plain_numeric_without_a_warning():
    """A column that is almost always one value (here 98% zeros) has two quantile edges: one
    bin, which rtdl warns about in every stage that builds the network. It is not embedded."""
    import warnings

    from retrain.config import ModelParams
    from retrain.models.network import build_network

    rng = np.random.default_rng(1)
    mostly_zero = np.where(rng.random(1000) < 0.98, 0.0, rng.lognormal(size=1000))
    train = pd.DataFrame({"x": rng.normal(size=1000), "pending": mostly_zero, "c": "a"})
    pre = Preprocessor.fit(train, ["x", "pending"], ["c"], n_bins=16)
    assert pre.transform(train)[:, 1].std() > 0  # still a feature, scaled
    assert set(pre.bins) == {"x"}
    hp = ModelParams(
        num_embeddings="ple",
        n_bins=16,
        d_embedding=4,
        k=2,
        arch="tabm-mini",
        hidden_dim=8,
        n_layers=1,
        dropout=0.0,
        lr=1e-3,
        weight_decay=0.0,
        batch_size=32,
        grad_clip=1.0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_network(pre.n_features, hp, pre.embedded(), pre.groups())
