"""The LightningModule: one step function, torchmetrics per split, keys like `val/auroc`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

import lightning.pytorch as pl
import torch
from torch import nn
from torchmetrics.classification import BinaryAUROC

OptimizerFactory = Callable[[Iterator[nn.Parameter]], torch.optim.Optimizer]

# Splits scored with ROC AUC. Not train: an AUROC over predictions from weights that change
# every step, with dropout on, says little, nothing reads it, and updating and sorting it cost
# about a tenth of training time at batch 4096 (bench/training.py).
SCORED = ("val", "test")


class BinaryClassifier(pl.LightningModule):
    """Binary classification with BCE-with-logits loss.

    Args:
        network: maps a float design matrix to one logit per row.
        optimizer_factory: builds the optimiser from the parameters (lr etc. bound in).
        hparams: the hyperparameters to record in the checkpoint.
    """

    def __init__(
        self,
        network: nn.Module,
        optimizer_factory: OptimizerFactory,
        hparams: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(hparams or {})
        self.network = network
        self.optimizer_factory = optimizer_factory
        self.loss = nn.BCEWithLogitsLoss()
        # ModuleDict keys may not shadow Module attributes such as `train`.
        self.auroc = nn.ModuleDict({f"{s}_": BinaryAUROC() for s in SCORED})
        self._loss_sums: dict[str, tuple[torch.Tensor | float, int]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x).squeeze(-1)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], split: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = self.loss(logits, y)
        if split in SCORED:
            self._auroc(split).update(logits.sigmoid(), y.long())
        # Summed here, logged once per epoch: see _log_epoch.
        total, rows = self._loss_sums.get(split, (0.0, 0))
        self._loss_sums[split] = (total + loss.detach() * len(y), rows + len(y))
        return loss

    def _auroc(self, split: str) -> BinaryAUROC:
        return cast(BinaryAUROC, self.auroc[f"{split}_"])

    def _log_epoch(self, split: str) -> None:
        # Logged once per epoch, not per step: each `self.log` call costs about as much as a
        # small batch's forward and backward, and logging the metric object in a step makes
        # Lightning move every prediction of the epoch so far on each call, quadratic in the
        # steps (bench/training.py). The values are the same: the batch-size-weighted mean
        # loss and the AUROC over every row of the epoch.
        if split in self._loss_sums:
            total, rows = self._loss_sums.pop(split)
            self.log(f"{split}/loss", total / rows)
        if split in SCORED and self._auroc(split).update_count:
            self.log(f"{split}/auroc", self._auroc(split).compute())
            self._auroc(split).reset()

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        return self._step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        return self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.parameters())
