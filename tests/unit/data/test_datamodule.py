from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from retrain.data.datamodule import (
    TensorBatches,
    TensorChunks,
    batch_loader,
    batches_per_chunk,
    chunk_loader,
)


class CountingBatches(TensorBatches):
    calls = 0

    def __getitem__(self, rows):
        type(self).calls += 1
        return super().__getitem__(rows)


def test_one_dataset_call_per_batch_and_no_collate():
    x = np.arange(1000 * 3, dtype=np.float32).reshape(1000, 3)
    y = np.arange(1000, dtype=np.float32)
    data = CountingBatches(x, y)
    batches = list(batch_loader(data, 256, shuffle=True, seed=0))
    assert CountingBatches.calls == 4  # not 1000: rows are never fetched one by one
    assert [len(b[1]) for b in batches] == [256, 256, 256, 232]
    xb, yb = batches[0]
    assert xb.shape == (256, 3) and xb.dtype == torch.float32
    # Rows stay aligned with their targets after shuffling.
    torch.testing.assert_close(xb[:, 0] / 3, yb)
    seen = torch.cat([b[1] for b in batches]).sort().values
    torch.testing.assert_close(seen, torch.arange(1000, dtype=torch.float32))


def test_shuffle_is_seeded_and_changes_per_epoch():
    data = TensorBatches(np.zeros((100, 1), np.float32), np.arange(100, dtype=np.float32))
    first = batch_loader(data, 100, shuffle=True, seed=7)
    epoch1, epoch2 = (next(iter(first))[1] for _ in range(2))
    again = next(iter(batch_loader(data, 100, shuffle=True, seed=7)))[1]
    assert torch.equal(epoch1, again)
    assert not torch.equal(epoch1, epoch2)
    ordered = next(iter(batch_loader(data, 100, shuffle=False)))[1]
    assert torch.equal(ordered, torch.arange(100, dtype=torch.float32))


@pytest.mark.parametrize("n_rows", [1000, 1024])  # a short last batch, and none
def test_batches_follow_random_sampler_order_epoch_after_epoch(n_rows):
    # Training results (and dvc.lock) stay what they were with BatchSampler(RandomSampler).
    data = TensorBatches(np.zeros((n_rows, 1), np.float32), np.arange(n_rows, dtype=np.float32))
    sampler = RandomSampler(data, generator=torch.Generator().manual_seed(3))
    old = DataLoader(data, sampler=BatchSampler(sampler, 64, drop_last=False), batch_size=None)
    new = batch_loader(data, 64, shuffle=True, seed=3)
    assert len(new) == len(old)
    for _ in range(3):
        # Lightning stops after len(loader) batches instead of exhausting the iterator.
        got = [b[1] for _, b in zip(range(len(new)), new, strict=False)]
        want = [b[1] for _, b in zip(range(len(old)), old, strict=False)]
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


@pytest.mark.parametrize("n_rows", [1000, 1024])  # a short last batch, and none
def test_chunks_hold_the_same_batches_in_the_same_order(n_rows):
    # A chunk only groups batches: the optimiser sees exactly the batches, in exactly the
    # order, that one batch per step would give, epoch after epoch.
    x = np.arange(n_rows, dtype=np.float32).reshape(-1, 1)
    y = np.arange(n_rows, dtype=np.float32)

    class CountingChunks(TensorChunks):
        calls = 0

        def __getitem__(self, batches):
            type(self).calls += 1
            return super().__getitem__(batches)

    per_batch = batch_loader(TensorBatches(x, y), 64, shuffle=True, seed=3)
    chunked = chunk_loader(CountingChunks(x, y), 64, chunk_rows=64 * 5, seed=3)
    assert len(chunked) == math.ceil(len(per_batch) / 5)
    for epoch in range(3):
        want = [b[1] for _, b in zip(range(len(per_batch)), per_batch, strict=False)]
        chunks = [c for _, c in zip(range(len(chunked)), chunked, strict=False)]
        assert CountingChunks.calls == len(chunked) * (epoch + 1)  # one gather per chunk
        assert [len(c) for c in chunks[:-1]] == [5] * (len(chunks) - 1)
        got = [yb for chunk in chunks for _, yb in chunk]
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
        for chunk in chunks:
            for xb, yb in chunk:
                torch.testing.assert_close(xb[:, 0], yb)  # rows still aligned


def test_batches_per_chunk():
    assert batches_per_chunk(64, 32_768) == 512
    assert batches_per_chunk(4096, 32_768) == 8
    assert batches_per_chunk(65_536, 32_768) == 1
