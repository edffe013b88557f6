"""Feed whole batches sliced from tensors: no per-row Dataset calls, no collate.

A default DataLoader calls __getitem__ once per row and collates the rows back into a batch;
on a 20-column table that is ~10x slower than the model itself at batch 4096. Here the
sampler yields each batch's row indices as one tensor and the dataset slices the tensors once
(bench/training.py measures both against a plain PyTorch loop).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


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


def batch_loader(
    data: TensorBatches, batch_size: int, *, shuffle: bool, seed: int = 0
) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
    """A DataLoader whose every item is already a batch (batch_size=None turns off collate)."""
    batches = IndexBatches(len(data), batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(data, sampler=batches, batch_size=None)


class TabularDataModule(pl.LightningDataModule):
    """Train/val matrices already preprocessed; shuffling seeded from the one seed."""

    def __init__(
        self,
        train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray],
        *,
        batch_size: int,
        seed: int,
        eval_batch_size: int = 8192,
    ) -> None:
        super().__init__()
        self.train_data = TensorBatches(*train)
        self.val_data = TensorBatches(*val)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.seed = seed

    def train_dataloader(self) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        return batch_loader(self.train_data, self.batch_size, shuffle=True, seed=self.seed)

    def val_dataloader(self) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        return batch_loader(self.val_data, self.eval_batch_size, shuffle=False)
