"""The LightningModule: one step function, torchmetrics per split, keys like `val/auroc`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

import lightning.pytorch as pl
import torch
from torch import nn
from torchmetrics.classification import BinaryAUROC

OptimizerFactory = Callable[[Iterator[nn.Parameter]], torch.optim.Optimizer]


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
        self.auroc = nn.ModuleDict({f"{s}_": BinaryAUROC() for s in ("train", "val", "test")})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x).squeeze(-1)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], split: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = self.loss(logits, y)
        auroc = cast(BinaryAUROC, self.auroc[f"{split}_"])
        auroc.update(logits.sigmoid(), y.long())
        self.log(f"{split}/loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        self.log(f"{split}/auroc", auroc, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        return self._step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        return self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.parameters())
