"""The ONNX predictor scores in chunks: the same bits as one run, for any chunk size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from retrain.data.preprocess import Preprocessor
from retrain.models import predictor as predictor_module
from retrain.models.export import export_onnx
from retrain.models.network import build_network
from retrain.models.predictor import Predictor
from tests.unit.models.test_network import _hp, _table


@pytest.fixture
def predictor(tmp_path) -> Predictor:
    table = _table()
    pre = Preprocessor.fit(table, ["amount", "flag"], ["plan", "region"], n_bins=8)
    torch.manual_seed(0)
    net = build_network(pre.n_features, _hp(), pre.embedded(), pre.groups()).eval()
    pre.save(tmp_path / "preprocessor.json")
    export_onnx(net, pre.n_features, tmp_path / "model.onnx")
    return Predictor(tmp_path / "preprocessor.json", tmp_path / "model.onnx")


def test_chunked_scores_are_the_bits_of_one_run(predictor, monkeypatch):
    x = predictor.preprocessor.transform(_table())
    (whole,) = predictor.session.run(None, {predictor.input: x.astype(np.float32)})
    monkeypatch.setattr(predictor_module, "CHUNK_ROWS", 7)  # 200 rows: 29 runs, the last short
    chunked = predictor.predict_matrix(x)
    assert chunked.shape == (len(x),)
    assert np.array_equal(chunked, np.asarray(whole, dtype=np.float64).reshape(-1))
    assert predictor.predict_matrix(x[:0]).shape == (0,)
