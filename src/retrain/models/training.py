"""The one training function: tuning trials and the final fit both call `fit`."""

from __future__ import annotations

import functools
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

from retrain.config import ModelParams
from retrain.data.datamodule import TabularDataModule
from retrain.data.preprocess import target_scale
from retrain.models import MONITOR
from retrain.models.module import TabularModule
from retrain.models.network import Bins, build_network
from retrain.task import BinaryTask, Task

Matrix = tuple[np.ndarray, np.ndarray]


@dataclass
class FitResult:
    module: TabularModule
    best_score: float  # of the task's monitor (val/auroc, val/log_loss, val/rmse)
    best_epoch: int  # 1-based, as the training log counts ("epoch 13/80")
    epochs_run: int
    device: str
    checkpoint: Path | None
    stopped_by: str = "max_epochs"  # one of STOP_REASONS
    still_improving: bool = False  # the last epoch trained was the best one


# Why training ended, read from the trainer's callbacks after `fit` (see `stop_reason`).
STOP_REASONS = ("early_stopping", "max_steps", "max_epochs")


def stop_reason(*, early_stopped: bool, epochs_run: int, budget: int, max_epochs: int) -> str:
    """Which limit ended training: early stopping, `max_steps` (its whole-epoch budget ran
    out before `max_epochs`) or `max_epochs`."""
    if early_stopped:
        return "early_stopping"
    if epochs_run >= budget and budget < max_epochs:
        return "max_steps"
    return "max_epochs"


def build_module(
    n_inputs: int,
    hp: ModelParams,
    bins: Bins | None = None,
    groups: Sequence[int] | None = None,
    *,
    task: Task | None = None,
    target: tuple[float, float] | None = None,
) -> TabularModule:
    """The module `fit` trains; `task` None: binary; `target`: a regression target's
    (mean, std) on the training split."""
    kind, n_outputs = (task.kind, task.n_outputs) if task is not None else ("binary", 1)
    network = build_network(n_inputs, hp, bins, groups, kind=kind, n_outputs=n_outputs)
    optimizer = functools.partial(torch.optim.AdamW, lr=hp.lr, weight_decay=hp.weight_decay)
    # The bins go into the checkpoint: `network_from_record` rebuilds the network from it
    # alone. The task's keys only for other tasks: a binary checkpoint stays byte-identical.
    record: dict[str, Any] = {"n_inputs": n_inputs, **hp.model_dump(), "bins": dict(bins or {})}
    if kind != "binary":
        record.update(task=kind, n_outputs=n_outputs)
    if target is not None:
        record["target"] = {"mean": target[0], "std": target[1]}
    return TabularModule(
        network, optimizer, record, grad_clip=hp.grad_clip, task=task, target=target
    )


def _portable(obj: Any, root: str) -> Any:
    """`obj` with every string path under `root` made relative to it."""
    if isinstance(obj, str) and obj.startswith(root):
        return obj[len(root) :].lstrip("/") or "."
    if isinstance(obj, dict):
        return {_portable(k, root): _portable(v, root) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_portable(v, root) for v in obj)
    return obj


def _quiet_lightning() -> None:
    # Lightning logs tips and device summaries at INFO on every Trainer; keep stage logs short.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*(LeafSpec|treespec).*")


def epoch_budget(n_rows: int, batch_size: int, max_epochs: int, max_steps: int | None) -> int:
    """`max_epochs`, or fewer when `max_steps` optimiser steps end sooner (whole epochs)."""
    if max_steps is None:
        return max_epochs
    per_epoch = math.ceil(n_rows / batch_size)
    return max(1, min(max_epochs, math.ceil(max_steps / per_epoch)))


def make_trainer(
    max_epochs: int,
    callbacks: Sequence[Callback],
    accelerator: str = "auto",
    *,
    checkpointing: bool = False,
    precision: str = "32-true",
) -> pl.Trainer:
    """The Trainer `fit` uses; the training benchmark builds the same one (bench/training.py).

    `precision` is Lightning's ("32-true", "16-mixed", "bf16-mixed", ...): train.precision.
    """
    return pl.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,  # type: ignore[arg-type]  # checked by Lightning, one line if wrong
        max_epochs=max_epochs,
        deterministic=True,
        callbacks=list(callbacks),
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=checkpointing,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
    )


class EpochLog(Callback):
    """Prints one line per validated epoch (`train: epoch 3/80 val/auroc 0.8412 (best ...)`):
    the flow streams a stage's output to the Prefect UI, so a long fit shows progress.

    `task`: whose monitor the line shows and in which direction "best" is (None: binary)."""

    def __init__(self, prefix: str, max_epochs: int, task: Task | None = None) -> None:
        self.prefix, self.max_epochs = prefix, max_epochs
        self.monitor = task.monitor if task is not None else MONITOR
        self.better = max if (task.monitor_mode if task is not None else "max") == "max" else min
        self.best: float | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After the module logged the epoch's metrics (as EarlyStopping reads them).
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        score = metrics.get(self.monitor)
        if score is None:
            return
        value = float(score)
        self.best = value if self.best is None else self.better(self.best, value)
        loss = metrics.get("val/loss")
        shown = f" val/loss {float(loss):.4f}" if loss is not None else ""
        print(
            f"{self.prefix}: epoch {trainer.current_epoch + 1}/{self.max_epochs}{shown} "
            f"{self.monitor} {value:.4f} (best {self.best:.4f})",
            flush=True,
        )


def _checkpointer(checkpoint: Path | None, task: Task) -> ModelCheckpoint | None:
    """Keeps the best epoch's checkpoint at `checkpoint` (None: no checkpoint)."""
    if checkpoint is None:
        return None
    return ModelCheckpoint(
        dirpath=checkpoint.parent,
        filename=checkpoint.stem,
        monitor=task.monitor,
        mode=task.monitor_mode,
        save_top_k=1,
        enable_version_counter=False,
    )


def _restore_best(
    module: TabularModule, saver: ModelCheckpoint, checkpoint: Path, best: float
) -> float:
    """Load the best epoch's weights into `module`, rewrite the checkpoint with portable
    paths; the best score as the checkpoint recorded it."""
    # Our own file, just written: loading the full Lightning state (not only tensors) is safe.
    state = torch.load(saver.best_model_path, map_location="cpu", weights_only=False)
    module.load_state_dict(state["state_dict"])
    # Lightning stores absolute paths in the callback state; a checkpoint must not depend
    # on where the checkout lives, or a replay in a fresh clone would differ byte-wise.
    torch.save(_portable(state, str(Path(saver.dirpath or ".").resolve())), checkpoint)
    return float(saver.best_model_score) if saver.best_model_score is not None else best


def fit(
    train: Matrix,
    val: Matrix,
    hp: ModelParams,
    *,
    seed: int,
    max_epochs: int,
    patience: int,
    accelerator: str = "auto",
    num_threads: int | None = None,
    callbacks: Sequence[Callback] = (),
    checkpoint: Path | None = None,
    max_steps: int | None = None,
    bins: Bins | None = None,
    groups: Sequence[int] | None = None,
    precision: str = "32-true",
    task: Task | None = None,
    target: tuple[float, float] | None = None,
) -> FitResult:
    """Train the network with early stopping on the task's validation score (`task.monitor`:
    ROC AUC of the mean probability, log loss of the mean probabilities, RMSE of the mean).

    Args:
        train: design matrix and targets of the training split (retrain.task: 0/1, the
            class index, or the value).
        val: the same for the validation split, used for early stopping and pruning.
        hp: network and optimiser hyperparameters.
        seed: the one seed; set here before the weights are initialised.
        max_epochs: upper bound on epochs.
        patience: epochs without improvement before stopping.
        accelerator: "auto" picks a GPU when present, else the CPU.
        num_threads: CPU threads for torch; pinning keeps results identical across machines.
        callbacks: extra callbacks, e.g. Optuna's pruning callback.
        checkpoint: where to keep the best checkpoint; its weights are loaded back at the end.
        max_steps: at most this many optimiser steps, rounded up to whole epochs (so every
            epoch trained is validated and early stopping sees it).
        bins: the piecewise-linear embeddings' bins by design column (`Preprocessor.embedded`).
        groups: design columns per original column (`Preprocessor.groups`): the ensemble
            members' initial input scalings are drawn per original column.
        precision: Lightning's Trainer precision (train.precision); "16-mixed" on a GPU.
        task: the task (retrain.task); None: binary.
        target: a regression target's (mean, std) on the training split, as `prepare` saved
            them (`Preprocessor.target`); None: the training targets' own.
    """
    _quiet_lightning()
    if num_threads:
        torch.set_num_threads(num_threads)
    task = task if task is not None else BinaryTask([1])
    if task.kind == "regression" and target is None:
        target = target_scale(train[1])
    pl.seed_everything(seed, workers=True, verbose=False)
    module = build_module(train[0].shape[1], hp, bins, groups, task=task, target=target)
    data = TabularDataModule(train, val, batch_size=hp.batch_size, seed=seed)
    stopper = EarlyStopping(task.monitor, mode=task.monitor_mode, patience=patience)
    saver = _checkpointer(checkpoint, task)
    all_callbacks: list[Callback] = [stopper, *callbacks, *([saver] if saver else [])]
    epochs = epoch_budget(len(train[1]), hp.batch_size, max_epochs, max_steps)
    trainer = make_trainer(
        epochs, all_callbacks, accelerator, checkpointing=saver is not None, precision=precision
    )
    trainer.fit(module, datamodule=data)
    best = float(stopper.best_score)
    if checkpoint is not None and saver is not None and saver.best_model_path:
        best = _restore_best(module, saver, checkpoint, best)
    epochs_run = trainer.current_epoch
    # Lightning counts epochs from 0, the training log from 1: the best of `epochs_run`
    # epochs is the one `wait_count` epochs before the last (1-based, as the log prints it).
    best_epoch = epochs_run - stopper.wait_count
    return FitResult(
        module=module.cpu().eval(),
        best_score=best,
        best_epoch=best_epoch,
        epochs_run=epochs_run,
        device=str(trainer.strategy.root_device),
        checkpoint=Path(saver.best_model_path) if saver and saver.best_model_path else None,
        stopped_by=stop_reason(
            early_stopped=stopper.stopped_epoch > 0,
            epochs_run=epochs_run,
            budget=epochs,
            max_epochs=max_epochs,
        ),
        still_improving=stopper.wait_count == 0,
    )
