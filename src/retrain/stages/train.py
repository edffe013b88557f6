"""Stage `train`: fit with the tuned parameters; save the checkpoint, ONNX and a model card."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrain.config import ModelParams, Params
from retrain.data.splits import Splits, load_splits
from retrain.files import write_json
from retrain.infra import git
from retrain.infra.dvc import read_pin
from retrain.models import val_scores
from retrain.project import managed_paths
from retrain.stages._common import stage_main
from retrain.task import Task, task_for

if TYPE_CHECKING:
    from retrain.models.bagging import BagResult
    from retrain.models.training import FitResult


def run(params: Params) -> FitResult | BagResult:
    """Fit one model (train.bag_folds 0) or the bag of fold models; export what is served and
    write the interval, the validation rows' calibration scores and the model card.

    Returns the single model's fit, or the bag (its members' fits among it).
    """
    paths, cfg = params.paths, params.train
    task = task_for(params.dataset)
    tuned = json.loads(paths.best_params.read_text())
    hp = ModelParams.model_validate(tuned["params"])
    splits = load_splits(paths, ("train", "val"))
    paths.checkpoint.unlink(missing_ok=True)
    started = time.perf_counter()
    if cfg.bag_folds:
        return _run_bag(params, task, hp, splits, started)
    result = _fit_one(params, task, hp, splits)
    seconds = time.perf_counter() - started
    _export(params, task, splits, result.module.network)
    served = _served_val_scores(params, splits)
    write_json(paths.intervals, _intervals(params, task, splits, served))
    val_scores.write(paths.oof_val, served)
    write_json(paths.model_card, _card(params, hp, task, splits, result))
    print(
        f"train: {task.monitor} {result.best_score:.4f} at epoch {result.best_epoch} "
        f"({result.epochs_run} run) on {result.device} in {seconds:.1f}s"
    )
    warning = cut_short(result, params.train.max_steps)
    if warning:
        print(warning, flush=True)
    return result


def _fit_options(params: Params, task: Task, splits: Splits) -> dict[str, Any]:
    """`fit`'s keywords that the single model and every bag member share."""
    cfg = params.train
    return {
        "max_epochs": cfg.max_epochs,
        "patience": cfg.patience,
        "accelerator": cfg.accelerator,
        "num_threads": cfg.num_threads,
        "max_steps": cfg.max_steps,
        "bins": splits.preprocessor.embedded(),
        "groups": splits.preprocessor.groups(),
        "precision": cfg.precision,
        "task": task,
        "target": splits.preprocessor.target_scale(),  # a regression target's (mean, std)
    }


def _fit_one(params: Params, task: Task, hp: ModelParams, splits: Splits) -> FitResult:
    # torch and Lightning on the path that trains, not at import: `--help` and a params error
    # answer in a second (the stage's timing line counts them as its work).
    from retrain.models.training import EpochLog, fit

    return fit(
        splits.matrix("train"),
        splits.matrix("val"),
        hp,
        seed=params.seed,
        checkpoint=params.paths.checkpoint,
        callbacks=[EpochLog("train", params.train.max_epochs, task)],
        **_fit_options(params, task, splits),
    )


def _export(params: Params, task: Task, splits: Splits, network: Any) -> None:
    from retrain.models.export import export_onnx

    target = splits.preprocessor.target_scale()
    n_inputs = splits.preprocessor.n_features
    export_onnx(network, n_inputs, params.paths.onnx_model, kind=task.kind, target=target)


def _run_bag(
    params: Params, task: Task, hp: ModelParams, splits: Splits, started: float
) -> BagResult:
    """train.bag_folds K: K fold models of train+validation, served as their mean; the
    interval and the calibration scores from the members' out-of-fold validation scores."""
    from retrain.models.bagging import fit_bag, save_checkpoint
    from retrain.models.training import EpochLog

    paths, cfg = params.paths, params.train
    k = cfg.bag_folds
    bag = fit_bag(
        splits.matrix("train"),
        splits.matrix("val"),
        hp,
        k=k,
        seed=params.seed,
        callbacks=lambda i: [
            EpochLog(f"train: member {i + 1}/{k}", params.train.max_epochs, task)
        ],
        workers=cfg.workers,
        **_fit_options(params, task, splits),
    )
    seconds = time.perf_counter() - started
    save_checkpoint(paths.checkpoint, bag)
    _export(params, task, splits, bag.network)
    write_json(paths.intervals, _intervals(params, task, splits, bag.oof_val))
    val_scores.write(paths.oof_val, bag.oof_val)
    write_json(paths.model_card, _bag_card(params, hp, task, splits, bag))
    for i, member in enumerate(bag.members):
        print(
            f"train: member {i + 1}/{k}: {task.monitor} {member.best_score:.4f} on its held-out "
            f"fold at epoch {member.best_epoch} ({member.epochs_run} run)"
        )
        warning = cut_short(member, cfg.max_steps)
        if warning:
            print(warning.replace("train:", f"train: member {i + 1}/{k}:", 1), flush=True)
    at_once = f", {cfg.workers} at a time" if cfg.workers > 1 else ""
    print(f"train: {k} fold models on {bag.members[0].device} in {seconds:.1f}s{at_once}")
    return bag


def cut_short(result: FitResult, max_steps: int | None) -> str | None:
    """A warning when the step budget ended a model that was still learning (issue 27): the
    best epoch was the last one trained, so more steps would likely have helped."""
    if result.stopped_by != "max_steps" or not result.still_improving:
        return None
    return (
        f"train: warning: stopped by train.max_steps ({max_steps} steps, {result.epochs_run} "
        f"epoch(s)) while {result.best_score:.4f} was still improving at the last epoch: "
        "raise train.max_steps (or remove it) to train to early stopping"
    )


def _card(
    params: Params, hp: ModelParams, task: Task, splits: Splits, result: FitResult
) -> dict[str, Any]:
    """model_card.json: what was trained, on which data and code, and how training went."""
    return {
        **_card_head(params, hp, splits, len(splits.frames["train"])),
        "metrics": {task.monitor: round(result.best_score, 6)},
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped_by": result.stopped_by,
        "still_improving": result.still_improving,
        "device": result.device,
        "artifacts": _artifacts(params),
    }


def _bag_card(
    params: Params, hp: ModelParams, task: Task, splits: Splits, bag: BagResult
) -> dict[str, Any]:
    """model_card.json of a bag: no single best epoch or stopping reason describes it, so
    those are per member, each with its held-out fold's score (what it early-stopped on);
    `metrics` holds their mean."""
    members = [
        {
            "seed": params.seed + i,
            "rows": bag.fit_rows[i],
            "held_out_rows": bag.rows - bag.fit_rows[i],
            "metrics": {task.monitor: round(m.best_score, 6)},
            "best_epoch": m.best_epoch,
            "epochs_run": m.epochs_run,
            "stopped_by": m.stopped_by,
            "still_improving": m.still_improving,
        }
        for i, m in enumerate(bag.members)
    ]
    mean = float(np.mean([m.best_score for m in bag.members]))
    return {
        **_card_head(params, hp, splits, bag.rows),
        "bag_folds": len(bag.members),
        "metrics": {task.monitor: round(mean, 6)},
        "members": members,
        "device": bag.members[0].device,
        "artifacts": _artifacts(params),
    }


def _card_head(params: Params, hp: ModelParams, splits: Splits, rows: int) -> dict[str, Any]:
    """The card's keys shared by one model and a bag; `rows`: the rows trained on."""
    paths = params.paths
    pin = read_pin(paths.data_pin)
    return {
        "model": hp.architecture()["network"],
        "dataset": params.dataset.name,
        "data": {"path": str(pin.path), "md5": pin.md5, "rows": rows},
        # DVC runs the stage at the checkout's root; what the pipeline itself writes (params,
        # dvc.lock, every `paths` entry) does not make the code dirty.
        "git_revision": git.revision(Path.cwd(), managed_paths(Path.cwd(), params)),
        "seed": params.seed,
        "params": hp.model_dump(),
        "n_inputs": splits.preprocessor.n_features,
    }


def _artifacts(params: Params) -> dict[str, str]:
    paths = params.paths
    return {
        "checkpoint": str(paths.checkpoint),
        "onnx": str(paths.onnx_model),
        "preprocessor": str(paths.preprocessor),
    }


def _served_val_scores(params: Params, splits: Splits) -> np.ndarray:
    """The exported model's scores of the validation rows (what evaluate scores them with)."""
    from retrain.models.predictor import Predictor

    predictor = Predictor(params.paths.preprocessor, params.paths.onnx_model)
    return predictor.predict_matrix(splits.matrix("val")[0])


def _intervals(params: Params, task: Task, splits: Splits, scores: np.ndarray) -> dict[str, Any]:
    """paths.intervals: a regression's split-conformal interval on the validation residuals
    of `scores` (the exported model's, or a bag's out-of-fold ones); nulls for a
    classifier (retrain.models.intervals)."""
    from retrain.models.intervals import intervals_record

    y_val = splits.matrix("val")[1]
    if task.kind != "regression":
        return intervals_record(None, y_val, None)
    return intervals_record(params.train.interval_level, y_val, scores)


def main() -> None:
    stage_main("train", run)


if __name__ == "__main__":
    main()
