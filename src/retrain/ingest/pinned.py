"""The pinned data, as a batch is judged against it: the config checked first, then the
reference (column order, kinds, ids) of the data contract.

A fault of params.yaml (a target column the pinned data does not have, a suite that does not
load) is raised here, before any landed entry is touched: it is the config's fault, and a
batch quarantined for it would be blamed for nothing.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from retrain import PARAMS_FILE
from retrain.config import Params
from retrain.data.io import SUFFIXES, read_file, table_files
from retrain.errors import ConfigMismatch, DataError
from retrain.validation.contract import Reference


def pinned_files(params: Params) -> list[Path]:
    """The pinned tables `prepare` reads (paths.raw_data), and the accepted batches where
    paths.batches lies outside it; [] when nothing is there yet."""
    try:
        files = table_files(params.paths.raw_data)
    except DataError:
        files = []
    seen = {f.resolve() for f in files}
    batches = params.paths.batches
    if batches.is_dir():
        for p in sorted(batches.iterdir()):
            regular = p.is_file() and not p.is_symlink() and not p.name.startswith(".")
            if regular and p.suffix in SUFFIXES and p.resolve() not in seen:
                files.append(p)
    return files


def check_config(params: Params, frames: list[tuple[Path, pd.DataFrame]]) -> None:
    """params.yaml against the pinned data and its suite, as the `validate` stage checks it.

    Raises:
        ConfigMismatch: one line naming params.yaml (or the suite), the key and the column.
    """
    from retrain.validation.config_check import check_schema
    from retrain.validation.suite import check_suite, load_suite_json

    suite = params.dataset.suite
    try:
        suite_json = load_suite_json(suite)
    except DataError as err:
        raise ConfigMismatch(f"{PARAMS_FILE}: dataset.suite: {err}") from None
    check_suite(suite, suite_json)
    if frames:
        check_schema(params.dataset, frames)


def load_reference(params: Params) -> Reference:
    """Check the config, then read the pinned data's reference (empty when nothing is pinned).

    Raises:
        ConfigMismatch: params.yaml disagrees with the pinned data (see `check_config`).
        DataError: a pinned file cannot be read (the pinned data is broken, not the batch).
    """
    from retrain.ingest.holdout import holdout_files

    # The holdout's rows are pinned too: a later batch may not reuse their ids.
    frames = [(f, read_file(f)) for f in [*pinned_files(params), *holdout_files(params)]]
    check_config(params, frames)
    return Reference.of([df for _, df in frames], params.dataset.id_column)
