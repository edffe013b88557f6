"""Stage `train`: fit with the tuned parameters; save the checkpoint, ONNX and a model card."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain.config import ModelParams, Params
from retrain.data.splits import Splits, load_splits
from retrain.files import write_json
from retrain.infra import git
from retrain.infra.dvc import read_pin
from retrain.project import managed_paths
from retrain.stages._common import stage_main
from retrain.task import Task, task_for

if TYPE_CHECKING:
    from retrain.models.training import FitResult


def run(params: Params) -> FitResult:
    # torch and Lightning on the path that trains, not at import: `--help` and a params error
    # answer in a second (the stage's timing line counts them as its work).
    from retrain.models.export import export_onnx
    from retrain.models.training import EpochLog, fit

    paths, cfg = params.paths, params.train
    task = task_for(params.dataset)
    tuned = json.loads(paths.best_params.read_text())
    hp = ModelParams.model_validate(tuned["params"])
    splits = load_splits(paths, ("train", "val"))
    target = splits.preprocessor.target_scale()  # a regression target's (mean, std)
    paths.checkpoint.unlink(missing_ok=True)
    started = time.perf_counter()
    result = fit(
        splits.matrix("train"),
        splits.matrix("val"),
        hp,
        seed=params.seed,
        max_epochs=cfg.max_epochs,
        patience=cfg.patience,
        accelerator=cfg.accelerator,
        num_threads=cfg.num_threads,
        checkpoint=paths.checkpoint,
        max_steps=cfg.max_steps,
        callbacks=[EpochLog("train", cfg.max_epochs, task)],
        bins=splits.preprocessor.embedded(),
        groups=splits.preprocessor.groups(),
        precision=cfg.precision,
        task=task,
        target=target,
    )
    seconds = time.perf_counter() - started
    n_inputs = splits.preprocessor.n_features
    export_onnx(result.module.network, n_inputs, paths.onnx_model, kind=task.kind, target=target)
    write_json(paths.intervals, _intervals(params, task, splits))
    write_json(paths.model_card, _card(params, hp, task, splits, result))
    print(
        f"train: {task.monitor} {result.best_score:.4f} at epoch {result.best_epoch} "
        f"({result.epochs_run} run) on {result.device} in {seconds:.1f}s"
    )
    warning = cut_short(result, params.train.max_steps)
    if warning:
        print(warning, flush=True)
    return result


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
    paths = params.paths
    pin = read_pin(paths.data_pin)
    return {
        "model": hp.architecture()["network"],
        "dataset": params.dataset.name,
        "data": {"path": str(pin.path), "md5": pin.md5, "rows": len(splits.frames["train"])},
        # DVC runs the stage at the checkout's root; what the pipeline itself writes (params,
        # dvc.lock, every `paths` entry) does not make the code dirty.
        "git_revision": git.revision(Path.cwd(), managed_paths(Path.cwd(), params)),
        "seed": params.seed,
        "params": hp.model_dump(),
        "n_inputs": splits.preprocessor.n_features,
        "metrics": {task.monitor: round(result.best_score, 6)},
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped_by": result.stopped_by,
        "still_improving": result.still_improving,
        "device": result.device,
        "artifacts": {
            "checkpoint": str(paths.checkpoint),
            "onnx": str(paths.onnx_model),
            "preprocessor": str(paths.preprocessor),
        },
    }


def _intervals(params: Params, task: Task, splits: Splits) -> dict[str, Any]:
    """paths.intervals: a regression's split-conformal interval on the validation residuals
    of the exported model (what is served); nulls for a classifier (retrain.models.intervals)."""
    from retrain.models.intervals import intervals_record
    from retrain.models.predictor import Predictor

    x_val, y_val = splits.matrix("val")
    if task.kind != "regression":
        return intervals_record(None, y_val, None)
    predicted = Predictor(params.paths.preprocessor, params.paths.onnx_model).predict_matrix(x_val)
    return intervals_record(params.train.interval_level, y_val, predicted)


def main() -> None:
    stage_main("train", run)


if __name__ == "__main__":
    main()
