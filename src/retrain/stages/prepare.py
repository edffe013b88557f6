"""Stage `prepare`: clean the raw table, split it from the one seed, fit preprocessing on train."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from retrain.config import Params
from retrain.data.clean import TARGET, CleanReport, clean, targets
from retrain.data.encoding import TargetEncoding
from retrain.data.io import concat_tables, read_file, table_files
from retrain.data.preprocess import Preprocessor, target_scale
from retrain.data.splits import split
from retrain.files import write_json
from retrain.stages._common import stage_main
from retrain.task import Task, task_for
from retrain.validation.contract import check_files_agree


@dataclass(frozen=True)
class PrepareResult:
    report: CleanReport
    rows: dict[str, int]
    positive_rate: dict[str, float]  # binary only (empty for the other tasks)
    n_features: int
    target: dict[str, Any]  # the target per split, as `target_summary` describes it


def target_summary(task: Task, splits: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The target of each split, as the task reads it: binary `positive_rate`; multiclass
    `class_share` (each class's share of the rows, in dataset.classes order); regression
    `target_mean` and `target_std` (in the target's units)."""
    if task.kind == "multiclass":
        names = [str(c) for c in task.classes]
        shares = {
            split: np.bincount(frame[TARGET], minlength=len(names)) / max(len(frame), 1)
            for split, frame in splits.items()
        }
        return {
            "class_share": {
                split: {c: round(float(x), 6) for c, x in zip(names, share, strict=True)}
                for split, share in shares.items()
            }
        }
    if task.kind == "regression":
        return {
            f"target_{stat}": {
                split: round(float(getattr(frame[TARGET], stat)()), 6)
                for split, frame in splits.items()
            }
            for stat in ("mean", "std")
        }
    return {"positive_rate": {k: round(float(v[TARGET].mean()), 6) for k, v in splits.items()}}


def fit_encoding(params: Params, train: pd.DataFrame) -> TargetEncoding | None:
    """The target + frequency encoding of `dataset.high_cardinality`, fitted on the training
    split (out of fold for its own rows; retrain.data.encoding); None when none is listed."""
    schema, cfg = params.dataset, params.prepare
    if not schema.high_cardinality:
        return None
    task = task_for(schema)
    # The labels as `Splits.matrix("train")` reads them back (the out-of-fold values are
    # recomputed there); a regression target's scale as the preprocessor's own.
    y = targets(train)
    scale = target_scale(train[TARGET]) if task.kind == "regression" else None
    outputs = [str(c) for c in task.classes] if task.kind == "multiclass" else ["target"]
    return TargetEncoding.fit(
        train,
        schema.high_cardinality,
        y,
        kind=task.kind,
        outputs=outputs,
        scale=scale,
        folds=cfg.encoding_folds,
        seed=params.seed,
        smoothing=cfg.encoding_smoothing,
    )


def run(params: Params) -> PrepareResult:
    paths, cfg, schema = params.paths, params.prepare, params.dataset
    frames = [(f, read_file(f)) for f in table_files(paths.raw_data)]
    raw = concat_tables(frames)
    # The data contract ingest checked each batch against, so a file that reached the pinned
    # data another way fails here in one line naming file and column.
    check_files_agree(frames, schema)
    del frames  # the files' tables: only their concatenation is needed from here on
    table, report = clean(
        raw,
        schema,
        cfg.fill_values,
        drop_duplicates=cfg.drop_duplicates,
        source=str(paths.raw_data),
    )
    train, val, test = split(
        table,
        test_size=cfg.test_size,
        val_size=cfg.val_size,
        seed=params.seed,
        task=task_for(schema),
    )
    # Fitted on the training split only: val/test statistics never leak into the features.
    # The bins of the numeric embeddings too, so scoring, ONNX and serving share them.
    n_bins = params.model.n_bins if params.model.num_embeddings == "ple" else None
    # A regression target is learnt standardised with the training split's mean and std.
    target = train[TARGET] if task_for(schema).kind == "regression" else None
    one_hot = [c for c in schema.categorical if c not in schema.high_cardinality]
    encoding = fit_encoding(params, train)
    pre = Preprocessor.fit(train, schema.numeric, one_hot, n_bins, target, encoding)
    paths.prepared_dir.mkdir(parents=True, exist_ok=True)
    for frame, path in ((train, paths.train), (val, paths.val), (test, paths.test)):
        frame.to_parquet(path, index=False)
    pre.save(paths.preprocessor)
    splits = {"train": train, "val": val, "test": test}
    target = target_summary(task_for(schema), splits)
    result = PrepareResult(
        report=report,
        rows={k: len(v) for k, v in splits.items()},
        positive_rate=target.get("positive_rate", {}),
        n_features=pre.n_features,
        target=target,
    )
    write_json(
        paths.prepare_summary,
        {
            **report.to_dict(),
            "rows": result.rows,
            **target,
            "n_features": result.n_features,
        },
    )
    print(f"prepare: {report.rows_out} rows -> {result.rows}, {describe(pre)}")
    return result


def describe(pre: Preprocessor) -> str:
    """The design matrix in a phrase: its width, the embedded and the encoded columns."""
    return (
        f"{pre.n_features} features"
        + (f", {len(pre.bins)} numeric column(s) embedded" if pre.bins else "")
        + (
            f", {len(pre.encoded_columns)} column(s) target + frequency encoded"
            if pre.encoded_columns
            else ""
        )
    )


def main() -> None:
    stage_main("prepare", run)


if __name__ == "__main__":
    main()
