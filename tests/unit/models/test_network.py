"""The network starts its ensemble members as TabM does (tabm.TabM and the paper's code)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from retrain.config import ModelParams
from retrain.data.preprocess import Preprocessor
from retrain.models.network import build_network, feature_chunks


def _table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 200
    return pd.DataFrame(
        {
            "amount": rng.standard_normal(n),  # embedded
            "flag": rng.integers(0, 2, n).astype(float),  # 0/1: not embedded
            "plan": rng.choice(["a", "b", "c"], n),  # three one-hot columns, one feature
            "region": rng.choice(["n", "s"], n),
        }
    )


def _hp(**kw: object) -> ModelParams:
    base = {
        "hidden_dim": 8,
        "n_layers": 2,
        "dropout": 0.1,
        "lr": 0.002,
        "weight_decay": 0.0003,
        "batch_size": 32,
        "k": 16,
        "num_embeddings": "ple",
        "d_embedding": 4,
        **kw,
    }
    return ModelParams.model_validate(base)


def test_member_scalings_start_normal_and_equal_within_each_original_column():
    pre = Preprocessor.fit(_table(), ["amount", "flag"], ["plan", "region"], n_bins=8)
    assert pre.groups() == [1, 1, 3, 2]
    torch.manual_seed(0)
    net = build_network(pre.n_features, _hp(), pre.embedded(), pre.groups())
    scale = net.backbone.affine.weight.detach()  # (k, network input)
    # The input: amount's 4 embedding numbers, flag, plan's 3 levels, region's 2.
    assert scale.shape == (16, 4 + 1 + 3 + 2)
    for start, stop in ((0, 4), (5, 8), (8, 10)):
        assert torch.equal(
            scale[:, start:stop], scale[:, start : start + 1].expand(-1, stop - start)
        )
    # Drawn from N(0, 1), not random signs: with embeddings TabM starts from "normal".
    assert not torch.equal(scale.abs(), torch.ones_like(scale))
    assert scale[:, 0].std() > 0.3  # the members differ from each other


def test_without_embeddings_member_scalings_are_random_signs_per_column_group():
    pre = Preprocessor.fit(_table(), ["amount", "flag"], ["plan", "region"])
    torch.manual_seed(0)
    net = build_network(pre.n_features, _hp(num_embeddings="none"), None, pre.groups())
    scale = net.backbone.affine.weight.detach()
    assert scale.shape == (16, 2 + 3 + 2)
    assert torch.equal(scale.abs(), torch.ones_like(scale))
    assert torch.equal(scale[:, 2:5], scale[:, 2:3].expand(-1, 3))


def test_feature_chunks_put_embeddings_first_and_reject_groups_that_do_not_fit():
    assert feature_chunks(6, [0, 1], 16, [1, 1, 1, 3]) == [16, 16, 1, 3]
    assert feature_chunks(3, [], 16, None) == [1, 1, 1]
    with pytest.raises(ValueError, match="do not cover"):
        feature_chunks(6, [0], 16, [1, 2])
    with pytest.raises(ValueError, match="embedded column"):
        feature_chunks(4, [2], 16, [1, 3])
