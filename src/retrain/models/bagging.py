"""Bagging (train.bag_folds, issue 27): K fold models of train+validation, served as the mean
of their predictions in one ONNX graph.

Member i trains on K-1 of K seeded, stratified folds of train+validation (the folds tuning
scores on: `retrain.tuning.folds`) and early-stops on fold i, with its own seed, `seed + i`.
Every validation row is then trained on by K-1 members, so the served ensemble's own scores
on validation are in-sample: the rows that calibrate the model (binary: evaluate's F1
threshold; regression: the conformal interval) are scored out of fold instead, each by the one
member that held it out (`BagResult.oof_val`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

from retrain.config import ModelParams
from retrain.models.bag_workers import fit_in_processes
from retrain.models.network import BaggedNet, make_scorer
from retrain.models.training import FitResult, fit
from retrain.task import Task, TaskKind
from retrain.tuning.folds import fold_rows, pool

Matrix = tuple[np.ndarray, np.ndarray]


@dataclass
class BagResult:
    network: BaggedNet  # the members, best epoch each, as one network (eval mode, CPU)
    members: list[FitResult]  # member i: fitted without fold i, early-stopped on it
    fit_rows: list[int]  # rows each member trained on
    oof_val: (
        np.ndarray
    )  # validation rows in split order, each scored by the member that held it out
    rows: int  # train+validation rows the folds were cut from


def scores(network: nn.Module, x: np.ndarray, kind: TaskKind, target: Any = None) -> np.ndarray:
    """What the exported `network` serves for `x` (`make_scorer`), computed in torch: (rows,)
    of probabilities or values, (rows, classes) of class probabilities."""
    scorer = make_scorer(network, kind, target).cpu().eval()
    with torch.no_grad():
        out = scorer(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
    if kind != "multiclass":
        return out.reshape(-1)
    # float32 rows sum to 1 within ~1e-7; sklearn's log loss wants float64's (as Predictor).
    return out / out.sum(axis=1, keepdims=True) if len(out) else out


def fit_bag(
    train: Matrix,
    val: Matrix,
    hp: ModelParams,
    *,
    k: int,
    seed: int,
    task: Task,
    target: tuple[float, float] | None = None,
    callbacks: Callable[[int], Sequence[Callback]] = lambda _: (),
    workers: int = 1,
    **fit_options: Any,
) -> BagResult:
    """Fit `k` members on `k` folds of train+validation (see the module docstring).

    Args:
        train, val: the splits' design matrices and targets.
        hp: every member's hyperparameters (best_params.json).
        k: members and folds (train.bag_folds, 2 or more).
        seed: the one seed: it cuts the folds, and member i is seeded `seed + i`.
        task: the task; `target`: a regression target's training (mean, std), shared by all.
        callbacks: member index -> that member's own callbacks (e.g. a fresh EpochLog); with
            `workers` >= 2 they travel to the member's process, so they must pickle.
        workers: members fitted at once, each in its own process (train.workers); the
            members, and so every output, are the same bytes as one at a time.
        fit_options: the rest of `fit`'s keywords (max_epochs, patience, bins, ...).

    Raises:
        FoldError: a class has fewer rows than `k` in train+validation.
        BagError: a member's process raised or died (`workers` >= 2).
    """
    x, y = pool(train, val)
    n_train = len(train[1])
    folds = fold_rows(y, k, seed, task, key="train.bag_folds")
    if fit_options.get("num_threads"):
        # As `fit` does, here too: with `workers` no fit runs in this process, yet the
        # out-of-fold scores below must be computed with the threads the one-at-a-time path has.
        torch.set_num_threads(fit_options["num_threads"])
    with tempfile.TemporaryDirectory() as tmp:

        def member(i: int) -> dict[str, Any]:
            """Member i's `fit` keywords: its folds, seed, checkpoint and callbacks."""
            fitted, held = folds[i]
            return {
                "train": (x[fitted], y[fitted]),
                "val": (x[held], y[held]),
                "hp": hp,
                "seed": seed + i,
                # A checkpoint brings back the best epoch's weights, as for the single model.
                "checkpoint": Path(tmp) / f"member{i}" / "model.ckpt",
                "callbacks": list(callbacks(i)),
                "task": task,
                "target": target,
                **fit_options,
            }

        if workers >= 2:
            members = fit_in_processes(member, k, workers, seed)
        else:
            members = [fit(**member(i)) for i in range(k)]
    oof = _out_of_fold(members, folds, x, n_train, len(val[1]), task.kind, target)
    network = BaggedNet([m.module.network for m in members], task.kind).cpu().eval()
    return BagResult(network, members, [len(f) for f, _ in folds], oof, len(y))


def _out_of_fold(
    members: list[FitResult],
    folds: list[tuple[np.ndarray, np.ndarray]],
    x: np.ndarray,
    n_train: int,
    n_val: int,
    kind: TaskKind,
    target: Any,
) -> np.ndarray:
    """Each validation row (split order) scored by the one member whose fold held it out."""
    oof: np.ndarray | None = None
    for member, (_, held) in zip(members, folds, strict=True):
        rows = held[held >= n_train]
        scored = scores(member.module.network, x[rows], kind, target)
        if oof is None:
            oof = np.zeros((n_val, *scored.shape[1:]), dtype=np.float64)
        oof[rows - n_train] = scored
    assert oof is not None  # k >= 2 folds cover every validation row
    return oof


def save_checkpoint(path: Path, bag: BagResult) -> Path:
    """Every member's weights in one file, under the record `build_module` wrote plus
    `bag_folds`: `retrain.analysis.attributions.load_network` rebuilds the served ensemble
    from it (a BaggedNet), so Integrated Gradients explains what is served, not one member."""
    record = dict(bag.members[0].module.hparams)
    record["bag_folds"] = len(bag.members)
    state = {f"network.{name}": t for name, t in bag.network.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"hyper_parameters": record, "state_dict": state}, path)
    return path
