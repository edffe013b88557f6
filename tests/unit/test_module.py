"""The LightningModule logs its epoch metrics once per epoch, with the values they should have."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from retrain.config import ModelParams
from retrain.data.datamodule import TabularDataModule
from retrain.models.training import build_module, make_trainer


def test_epoch_metrics_are_the_epoch_means_and_auroc():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 4)).astype(np.float32)
    y = (x[:, 0] + rng.standard_normal(600) > 0).astype(np.float32)
    hp = ModelParams(hidden_dim=8, n_layers=1, dropout=0.0, lr=0.01, weight_decay=0, batch_size=64)
    torch.manual_seed(0)
    module = build_module(4, hp)
    data = TabularDataModule(
        (x[:400], y[:400]), (x[400:], y[400:]), batch_size=64, seed=0, eval_batch_size=64
    )
    trainer = make_trainer(2, [], "cpu")
    trainer.fit(module, datamodule=data)
    logged = trainer.callback_metrics
    assert set(logged) == {"train/loss", "val/loss", "val/auroc"}
    module.eval()
    with torch.no_grad():
        logits = module(torch.as_tensor(x[400:]))
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.as_tensor(y[400:]))
    assert float(logged["val/loss"]) == pytest.approx(float(loss), rel=1e-5)
    assert float(logged["val/auroc"]) == pytest.approx(roc_auc_score(y[400:], logits), abs=1e-6)
