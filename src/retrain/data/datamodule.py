"""Feed whole batches sliced from tensors: no per-row Dataset calls, no collate.

A default DataLoader calls __getitem__ once per row and collates the rows back into a batch;
on a 20-column table that is ~10x slower than the model itself at batch 4096. Here the
sampler yields each batch's row indices as one tensor and the dataset slices the tensors once
(bench/training.py measures both against a plain PyTorch loop).

Training goes one step further: each item is a *chunk* of consecutive batches, and the
module steps the optimiser once per batch inside one `training_step`. Lightning's loop costs
about a millisecond of Python per item whatever its size, as much as a whole step of a
small batch; a chunk pays it once for many steps (as Keras' `steps_per_execution` does).
The batches, their order and the optimiser steps are the same, so are the trained weights.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

Batch = tuple[torch.Tensor, torch.Tensor]


class TensorBatches(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Indexed by a batch of row indices; returns that batch as two tensors."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x = torch.as_tensor(x, dtype=torch.float32)
        self.y = torch.as_tensor(y, dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, rows: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(rows)
        return self.x[idx], self.y[idx]


class IndexBatches(Sampler[torch.Tensor]):
    """Each batch's row indices as one tensor: consecutive slices of one permutation per epoch.

    torch's BatchSampler over a RandomSampler builds every batch as a list of Python ints, one
    row at a time; at batch 4096 that costs about as much as the model's step. The shuffled
    order is the one RandomSampler gives for the same generator, so training is unchanged.
    """

    def __init__(self, n_rows: int, batch_size: int, *, shuffle: bool, seed: int = 0) -> None:
        self.n_rows = n_rows
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed) if shuffle else None

    def __len__(self) -> int:
        return math.ceil(self.n_rows / self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self.generator is None:
            yield from torch.arange(self.n_rows).split(self.batch_size)
            return
        *batches, last = torch.randperm(self.n_rows, generator=self.generator).split(
            self.batch_size
        )
        yield from batches
        # RandomSampler draws a second, unused permutation once it runs out of rows: while the
        # last batch is filled when that batch is short, else only if asked for one more.
        # Drawing it at the same points keeps every epoch's order identical to it.
        short = self.n_rows % self.batch_size != 0
        if short:
            torch.randperm(self.n_rows, generator=self.generator)
        yield last
        if not short:
            torch.randperm(self.n_rows, generator=self.generator)


class TensorChunks(Dataset[list[Batch]]):
    """Indexed by a chunk (a list of batches' row indices); returns the list of batches.

    One gather for the whole chunk, then views: cheaper than a gather per batch.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x = torch.as_tensor(x, dtype=torch.float32)
        self.y = torch.as_tensor(y, dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, batches: Sequence[torch.Tensor]) -> list[Batch]:
        sizes = [len(b) for b in batches]
        idx = torch.cat(list(batches))
        return list(zip(self.x[idx].split(sizes), self.y[idx].split(sizes), strict=True))


class IndexChunks(Sampler[list[torch.Tensor]]):
    """Consecutive batches of `IndexBatches`, `per_chunk` at a time (the last chunk shorter)."""

    def __init__(self, batches: IndexBatches, per_chunk: int) -> None:
        self.batches = batches
        self.per_chunk = per_chunk

    def __len__(self) -> int:
        return math.ceil(len(self.batches) / self.per_chunk)

    def __iter__(self) -> Iterator[list[torch.Tensor]]:
        chunk: list[torch.Tensor] = []
        # Take len() batches and stop, as Lightning does with a loader: resuming IndexBatches
        # after its last batch would draw a permutation RandomSampler never draws there.
        for batch in itertools.islice(self.batches, len(self.batches)):
            chunk.append(batch)
            if len(chunk) == self.per_chunk:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def batches_per_chunk(batch_size: int, chunk_rows: int) -> int:
    """How many batches make a chunk of about `chunk_rows` rows (at least one)."""
    return max(1, chunk_rows // batch_size)


def batch_loader(
    data: TensorBatches, batch_size: int, *, shuffle: bool, seed: int = 0
) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
    """A DataLoader whose every item is already a batch (batch_size=None turns off collate)."""
    batches = IndexBatches(len(data), batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(data, sampler=batches, batch_size=None)


def chunk_loader(
    data: TensorChunks, batch_size: int, *, chunk_rows: int, seed: int = 0
) -> DataLoader[list[Batch]]:
    """Shuffled training batches, grouped into chunks of about `chunk_rows` rows."""
    batches = IndexBatches(len(data), batch_size, shuffle=True, seed=seed)
    chunks = IndexChunks(batches, batches_per_chunk(batch_size, chunk_rows))
    return DataLoader(data, sampler=chunks, batch_size=None)


# Rows per training chunk: enough that Lightning's per-item cost vanishes even at batch 64
# (512 steps per item), small enough that a chunk is a few MB on a GPU.
CHUNK_ROWS = 32_768


class TabularDataModule(pl.LightningDataModule):
    """Train/val matrices already preprocessed; shuffling seeded from the one seed.

    Training items are chunks of batches (`TabularModule.training_step` steps once per
    batch); validation items are single batches of `eval_batch_size` rows.
    """

    def __init__(
        self,
        train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray],
        *,
        batch_size: int,
        seed: int,
        eval_batch_size: int = 8192,
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        super().__init__()
        self.train_data = TensorChunks(*train)
        self.val_data = TensorBatches(*val)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.chunk_rows = chunk_rows
        self.seed = seed

    def train_dataloader(self) -> DataLoader[list[Batch]]:
        return chunk_loader(
            self.train_data, self.batch_size, chunk_rows=self.chunk_rows, seed=self.seed
        )

    def val_dataloader(self) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        return batch_loader(self.val_data, self.eval_batch_size, shuffle=False)
