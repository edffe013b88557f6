"""The LightningModule: one step function, torchmetrics per split, keys like `val/auroc`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

import lightning.pytorch as pl
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import nn
from torchmetrics import MeanMetric, Metric
from torchmetrics.classification import BinaryAUROC

from retrain.models.network import TabularNet, ensemble_log_proba, ensemble_logit
from retrain.task import BinaryTask, Task, TaskKind

OptimizerFactory = Callable[[Iterator[nn.Parameter]], torch.optim.Optimizer]

# Splits scored with the task's validation metric. Not train: a score over predictions from
# weights that change every step, with dropout on, says little, nothing reads it, and updating
# and sorting an AUROC cost about a tenth of training time at batch 4096 (bench/training.py).
SCORED = ("val", "test")


def _score_metric(kind: TaskKind) -> Metric:
    """What accumulates a split's score over an epoch: the AUROC of the ensemble's
    probabilities (binary); the mean of the rows' log losses (multiclass) or squared errors
    (regression), from which `_log_epoch` logs log_loss and rmse."""
    return BinaryAUROC() if kind == "binary" else MeanMetric()


class TabularModule(pl.LightningModule):
    """Any supervised task (retrain.task): each head learns the target on its own.

    The network (retrain.models.network.TabularNet) gives each of its `k` members' outputs per
    row (`heads`); the loss is the mean over heads of the task's loss: BCE-with-logits on the
    0/1 label (binary), cross-entropy on the class index (multiclass), squared error on the
    target standardised with the training split's mean and std (regression). The ensemble's
    prediction (the mean of the members' probabilities, or values) is scored on validation
    under the task's `monitor` key (val/auroc, val/log_loss, val/rmse in the target's units),
    which early stopping, checkpointing and tuning watch.

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
        task: the task (None: binary); its `kind` picks the loss and its `monitor` the key.
        target: a regression target's (mean, std) on the training split (None: (0, 1)); the
            batches bring the target in its own units, the heads learn it standardised.
    """

    def __init__(
        self,
        network: nn.Module,
        optimizer_factory: OptimizerFactory,
        hparams: dict[str, Any] | None = None,
        grad_clip: float | None = None,
        *,
        task: Task | None = None,
        target: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(hparams or {})
        self.network = network
        self.optimizer_factory = optimizer_factory
        self.grad_clip = grad_clip
        self.kind: TaskKind = task.kind if task is not None else "binary"
        self.monitor = task.monitor if task is not None else BinaryTask.monitor
        self.target_mean, self.target_std = target or (0.0, 1.0)
        self.loss = _LOSSES[self.kind]()
        # ModuleDict keys may not shadow Module attributes such as `train`. Metric states are
        # not persistent: they never reach the checkpoint.
        self.scores = nn.ModuleDict({f"{s}_": _score_metric(self.kind) for s in SCORED})
        self._loss_sums: dict[str, tuple[torch.Tensor | float, int]] = {}
        self.automatic_optimization = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x).squeeze(-1)

    def head_loss(self, heads: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The task's loss, averaged over rows and heads: every head learns the target on its
        own. `y`: the batch's target as the model learns it (`model_target`)."""
        if self.kind == "multiclass":
            # Cross-entropy's "K-dimensional" form: (rows, classes, k) against (rows, k).
            return self.loss(
                heads.transpose(1, 2), y.long().unsqueeze(-1).expand(-1, heads.shape[1])
            )
        return self.loss(heads, y.unsqueeze(-1).expand_as(heads))

    def model_target(self, y: torch.Tensor) -> torch.Tensor:
        """The batch's target as the heads learn it: standardised for a regression."""
        if self.kind == "regression":
            return (y - self.target_mean) / self.target_std
        return y

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        """Each member's logit, (rows, k); a network without members gives one column."""
        if isinstance(self.network, TabularNet):
            return self.network.heads(x)
        return self.network(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], split: str) -> torch.Tensor:
        x, y = batch
        heads = self.heads(x)
        loss = self.head_loss(heads, self.model_target(y))
        if split in SCORED:
            self._update_score(split, heads.detach(), y)
        # Summed here, logged once per epoch: see _log_epoch.
        total, rows = self._loss_sums.get(split, (0.0, 0))
        self._loss_sums[split] = (total + loss.detach() * len(y), rows + len(y))
        return loss

    def _update_score(self, split: str, heads: torch.Tensor, y: torch.Tensor) -> None:
        """Add a batch's ensemble predictions to the split's score (see `_score_metric`)."""
        if self.kind == "binary":
            self._score(split).update(ensemble_logit(heads).sigmoid(), y.long())
        elif self.kind == "multiclass":
            log_proba = ensemble_log_proba(heads)
            self._score(split).update(-log_proba.gather(1, y.long().unsqueeze(-1)).squeeze(-1))
        else:  # regression: the squared error of the members' mean, in the target's units
            value = heads.mean(dim=-1) * self.target_std + self.target_mean
            self._score(split).update((value - y) ** 2)

    def _score(self, split: str) -> Metric:
        return cast(Metric, self.scores[f"{split}_"])

    def _log_epoch(self, split: str) -> None:
        # Logged once per epoch, not per step: each `self.log` call costs about as much as a
        # small batch's forward and backward, and logging the metric object in a step makes
        # Lightning move every prediction of the epoch so far on each call, quadratic in the
        # steps (bench/training.py). The values are the same: the batch-size-weighted mean
        # loss and the score over every row of the epoch.
        if split in self._loss_sums:
            total, rows = self._loss_sums.pop(split)
            self.log(f"{split}/loss", total / rows)
        if split in SCORED and self._score(split).update_count:
            value = self._score(split).compute()
            name = self.monitor.removeprefix("val/")
            self.log(f"{split}/{name}", value.sqrt() if name == "rmse" else value)
            self._score(split).reset()

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


# The loss of one head against the target, per task (mean over rows and heads).
_LOSSES: dict[TaskKind, Callable[[], nn.Module]] = {
    "binary": nn.BCEWithLogitsLoss,
    "multiclass": nn.CrossEntropyLoss,
    "regression": nn.MSELoss,
}
