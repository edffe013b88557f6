"""The LightningModule logs its epoch metrics once per epoch, with the values they should have."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch.utils.data import BatchSampler, RandomSampler

from retrain.config import ModelParams
from retrain.data.datamodule import TabularDataModule
from retrain.models.training import build_module, fit, make_trainer


def test_epoch_metrics_are_the_epoch_means_and_auroc():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 4)).astype(np.float32)
    y = (x[:, 0] + rng.standard_normal(600) > 0).astype(np.float32)
    hp = ModelParams(
        hidden_dim=8, n_layers=1, dropout=0.0, lr=0.01, weight_decay=0, batch_size=64, k=4
    )
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
        heads = module.network.heads(torch.as_tensor(x[400:]))
    assert heads.shape == (200, 4)
    # The loss: each head's BCE against the label, averaged over heads and rows.
    per_head = [
        torch.nn.functional.binary_cross_entropy_with_logits(heads[:, i], torch.as_tensor(y[400:]))
        for i in range(4)
    ]
    assert float(logged["val/loss"]) == pytest.approx(float(sum(per_head)) / 4, rel=1e-5)
    # The score early stopping watches: the AUROC of the mean of the heads' probabilities.
    mean_probability = heads.sigmoid().mean(dim=1).numpy()
    want = roc_auc_score(y[400:], mean_probability)
    assert float(logged["val/auroc"]) == pytest.approx(want, abs=1e-6)
    assert want != pytest.approx(roc_auc_score(y[400:], heads[:, 0].numpy()), abs=1e-6)


def test_the_forward_logit_is_the_mean_probability_of_the_heads():
    # forward's one logit (exported, explained) must be exactly logit(mean of k sigmoids),
    # also where the mean is within float rounding of 0 or 1.
    hp = ModelParams(
        hidden_dim=8, n_layers=1, dropout=0.0, lr=0.01, weight_decay=0, batch_size=8, k=5
    )
    torch.manual_seed(0)
    network = build_module(3, hp).network.eval()
    x = torch.randn(50, 3) * torch.tensor([1.0, 1.0, 400.0])  # some rows saturate
    with torch.no_grad():
        logit = network(x).squeeze(-1).double()
        heads = network.heads(x).double()
    assert torch.isfinite(logit).all()
    assert torch.allclose(logit.sigmoid(), heads.sigmoid().mean(dim=1), atol=1e-6)


def loader_seed() -> None:
    """The one draw from the global generator a DataLoader iterator makes when it starts."""
    torch.empty((), dtype=torch.int64).random_()


@pytest.mark.parametrize("n_rows", [400, 384])  # a short last batch, and none
def test_chunked_training_takes_the_steps_of_a_plain_loop(n_rows):
    # Several optimiser steps per Lightning step must still be one AdamW step per batch, with
    # dropout drawing from the same generator in the same order: the weights after two epochs
    # equal a plain PyTorch loop's over the same batches, bit for bit.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n_rows, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    val = (x[:64], y[:64])
    # With the real architecture: 3 heads, a piecewise-linear embedding of column 1, and a
    # gradient clip small enough to bite.
    hp = ModelParams(
        hidden_dim=8,
        n_layers=2,
        dropout=0.3,
        lr=0.01,
        weight_decay=0,
        batch_size=64,
        k=3,
        num_embeddings="ple",
        d_embedding=4,
        grad_clip=0.05,
    )
    torch.manual_seed(0)
    module = build_module(4, hp, {1: [-3.0, -0.5, 0.0, 0.4, 3.0]})
    assert module.network.embed is not None
    reference = copy.deepcopy(module)
    data = TabularDataModule((x, y), val, batch_size=64, seed=5, chunk_rows=64 * 3)
    torch.manual_seed(11)
    trainer = make_trainer(2, [], "cpu")
    trainer.fit(module, datamodule=data)
    assert trainer.global_step == 2 * math.ceil(n_rows / 64)  # one per optimiser step

    torch.manual_seed(11)
    optimizer = reference.configure_optimizers()
    sampler = RandomSampler(range(n_rows), generator=torch.Generator().manual_seed(5))
    batches = BatchSampler(sampler, 64, drop_last=False)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    clipped = False
    for _ in range(2):
        reference.train()
        loader_seed()  # the training DataLoader's iterator draws its base seed
        # len() batches, as Lightning takes them from a loader (see IndexBatches).
        for rows in itertools.islice(batches, len(batches)):
            optimizer.zero_grad()
            reference.head_loss(reference.heads(xt[rows]), yt[rows]).backward()
            norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.05)
            clipped |= bool(norm > 0.05)
            optimizer.step()
        loader_seed()  # and so does the validation loader's, after the epoch
    assert clipped  # the clip was in play, so leaving it out of training_step would fail here
    for name, want in reference.state_dict().items():
        assert torch.equal(module.state_dict()[name], want), name


def test_trains_in_bf16_mixed_precision_on_the_cpu():
    # Lightning's bf16 autocast runs on the CPU too: the same manual optimisation (clip and
    # all) trains a finite model that ranks, and autocast really was on (other weights than
    # 32-bit). The GPU's "16-mixed", with its grad scaler, is tests/model/test_gpu.py's.
    rng = np.random.default_rng(2)
    x = rng.standard_normal((512, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.standard_normal(512) > 0).astype(np.float32)
    hp = ModelParams(
        hidden_dim=16,
        n_layers=1,
        dropout=0.0,
        lr=0.01,
        weight_decay=0,
        batch_size=64,
        k=4,
        grad_clip=0.5,
    )
    train, val = (x[:384], y[:384]), (x[384:], y[384:])
    runs = {
        precision: fit(
            train,
            val,
            hp,
            seed=0,
            max_epochs=3,
            patience=3,
            accelerator="cpu",
            num_threads=1,
            precision=precision,
        )
        for precision in ("bf16-mixed", "32-true")
    }
    mixed = runs["bf16-mixed"].module.state_dict()
    assert all(v.dtype != torch.bfloat16 for v in mixed.values())  # float32 weights (ONNX)
    assert all(torch.isfinite(v).all() for v in mixed.values() if v.is_floating_point())
    assert runs["bf16-mixed"].epochs_run == 3
    assert runs["bf16-mixed"].best_score > 0.8
    plain = runs["32-true"].module.state_dict()
    assert any(not torch.equal(mixed[k], plain[k]) for k in plain)
