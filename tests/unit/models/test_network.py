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


@pytest.mark.parametrize("arch", ["tabm", "tabm-mini"])
def test_both_ensemble_kinds_export_to_onnx_and_score_as_torch(arch, tmp_path):
    import onnxruntime as ort

    from retrain.models.export import export_onnx

    pre = Preprocessor.fit(_table(), ["amount", "flag"], ["plan", "region"], n_bins=8)
    torch.manual_seed(0)
    net = build_network(pre.n_features, _hp(arch=arch), pre.embedded(), pre.groups()).eval()
    x = pre.transform(_table()).astype(np.float32)
    export_onnx(net, pre.n_features, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    onnx_scores = session.run(None, {session.get_inputs()[0].name: x})[0].ravel()
    with torch.no_grad():
        torch_scores = net(torch.from_numpy(x)).sigmoid().numpy().ravel()
    np.testing.assert_allclose(onnx_scores, torch_scores, atol=1e-6)


def test_tabm_scales_every_hidden_layer_per_member_and_mini_only_the_input():
    pre = Preprocessor.fit(_table(), ["amount", "flag"], ["plan", "region"], n_bins=8)
    torch.manual_seed(0)
    full = build_network(pre.n_features, _hp(arch="tabm"), pre.embedded(), pre.groups())
    mini = build_network(pre.n_features, _hp(arch="tabm-mini"), pre.embedded(), pre.groups())
    # BatchEnsemble: each of the 2 hidden layers has k input and output scalings (r, s).
    per_member = [
        name for name, p in full.backbone.named_parameters() if p.ndim == 2 and p.shape[0] == 16
    ]
    assert len(per_member) >= 4, per_member
    # TabM's init: the members start different only at the input (the first layer's r).
    first, *rest = [p for n, p in full.backbone.named_parameters() if n.endswith(".r")]
    assert first.detach()[:, 0].std() > 0.3
    for r in rest:
        assert torch.equal(r.detach(), torch.ones_like(r))
    # TabM-mini: only the input scaling (`affine`) is per member.
    assert [n for n, p in mini.backbone.named_parameters() if p.shape[:1] == (16,)] == [
        "affine.weight"
    ]
