"""Stage `prepare`: clean the raw table, split it from the one seed, fit preprocessing on train."""

from __future__ import annotations

from dataclasses import dataclass

from retrain.config import Params
from retrain.data.clean import TARGET, CleanReport, clean
from retrain.data.io import concat_tables, read_file, table_files
from retrain.data.preprocess import Preprocessor
from retrain.data.splits import split
from retrain.files import write_json
from retrain.stages._common import stage_main
from retrain.task import task_for
from retrain.validation.contract import check_files_agree


@dataclass(frozen=True)
class PrepareResult:
    report: CleanReport
    rows: dict[str, int]
    positive_rate: dict[str, float]
    n_features: int


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
    pre = Preprocessor.fit(train, schema.numeric, schema.categorical, n_bins, target)
    paths.prepared_dir.mkdir(parents=True, exist_ok=True)
    for frame, path in ((train, paths.train), (val, paths.val), (test, paths.test)):
        frame.to_parquet(path, index=False)
    pre.save(paths.preprocessor)
    splits = {"train": train, "val": val, "test": test}
    result = PrepareResult(
        report=report,
        rows={k: len(v) for k, v in splits.items()},
        positive_rate={k: round(float(v[TARGET].mean()), 6) for k, v in splits.items()},
        n_features=pre.n_features,
    )
    write_json(
        paths.prepare_summary,
        {
            **report.to_dict(),
            "rows": result.rows,
            "positive_rate": result.positive_rate,
            "n_features": result.n_features,
        },
    )
    print(
        f"prepare: {report.rows_out} rows -> {result.rows}, {pre.n_features} features"
        + (f", {len(pre.bins)} numeric column(s) embedded" if pre.bins else "")
    )
    return result


def main() -> None:
    stage_main("prepare", run)


if __name__ == "__main__":
    main()
