"""The LightningModule: one step function, torchmetrics per split, keys like `val/auroc`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

import lightning.pytorch as pl
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import nn
from torchmetrics.classification import BinaryAUROC

from retrain.models.network import TabularNet, ensemble_logit

OptimizerFactory = Callable[[Iterator[nn.Parameter]], torch.optim.Optimizer]

# Splits scored with ROC AUC. Not train: an AUROC over predictions from weights that change
# every step, with dropout on, says little, nothing reads it, and updating and sorting it cost
# about a tenth of training time at batch 4096 (bench/training.py).
SCORED = ("val", "test")


class BinaryClassifier(pl.LightningModule):
    """Binary classification: the mean BCE-with-logits loss over the network's heads.

    The network (retrain.models.network.TabularNet) gives `k` logits per row (`heads`); the
    loss is their mean BCE, each head trained on the label; the prediction, scored with ROC
    AUC and early-stopped on, is the mean of the k probabilities (`forward`'s logit).

    Optimised manually: a training item is a chunk of batches (retrain.data.datamodule) and
    `training_step` takes one optimiser step per batch, exactly the steps Lightning's automatic
    optimisation would take, through Lightning's public manual-optimisation API
    (`manual_backward`, the wrapped optimiser's `step`), so that any Trainer `precision` works
    ("16-mixed" scales the loss and unscales before clipping) and `trainer.global_step` counts
    optimiser steps.

    Args:
        network: a TabularNet over the float design matrix (or any module mapping it to
            logits of shape (rows, k), e.g. one logit per row: a single head).
        optimizer_factory: builds the optimiser from the parameters (lr etc. bound in).
        hparams: the hyperparameters to record in the checkpoint.
        grad_clip: the largest gradient norm of a step (None: no clipping). Clipped here (in
            `on_before_optimizer_step`, after a mixed-precision unscale): with manual
            optimisation Lightning's `gradient_clip_val` does nothing.
    """

    def __init__(
        self,
        network: nn.Module,
        optimizer_factory: OptimizerFactory,
        hparams: dict[str, Any] | None = None,
        grad_clip: float | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(hparams or {})
        self.network = network
        self.optimizer_factory = optimizer_factory
        self.grad_clip = grad_clip
        self.loss = nn.BCEWithLogitsLoss()
        # ModuleDict keys may not shadow Module attributes such as `train`.
        self.auroc = nn.ModuleDict({f"{s}_": BinaryAUROC() for s in SCORED})
        self._loss_sums: dict[str, tuple[torch.Tensor | float, int]] = {}
        self.automatic_optimization = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x).squeeze(-1)

    def head_loss(self, heads: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean BCE over rows and heads: every head learns the label on its own."""
        return self.loss(heads, y.unsqueeze(-1).expand_as(heads))

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        """Each member's logit, (rows, k); a network without members gives one column."""
        if isinstance(self.network, TabularNet):
            return self.network.heads(x)
        return self.network(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], split: str) -> torch.Tensor:
        x, y = batch
        heads = self.heads(x)
        loss = self.head_loss(heads, y)
        if split in SCORED:
            probs = ensemble_logit(heads.detach()).sigmoid()
            self._auroc(split).update(probs, y.long())
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

    def training_step(self, chunk: list[tuple[torch.Tensor, torch.Tensor]], _: int) -> None:
        # Per batch what automatic optimisation does: zero the grads, forward, backward, step.
        # Lightning's manual_backward and optimizer wrapper cost ~75 us of hooks per step
        # (a 20->16->1 network at batch 64 on one CPU thread: 0.99 ms a step, 0.92 ms calling
        # torch directly), the price of public APIs: the wrapper counts the step in
        # trainer.global_step and the precision plugin scales the loss and steps through its
        # grad scaler. In 32-bit the arithmetic is torch's backward and step, as before.
        optimizer = cast(LightningOptimizer, self.optimizers())
        for batch in chunk:
            optimizer.zero_grad()
            self.manual_backward(self._step(batch, "train"))
            optimizer.step()

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Called inside the wrapped step, after a mixed-precision grad scaler unscaled the
        # gradients and before the update: where a clip must be.
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.parameters(), self.grad_clip)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        return self._step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        return self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.parameters())
