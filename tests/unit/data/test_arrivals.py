"""The order the stored batches arrived in, whatever their names' sort order."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from retrain.config import load_params
from retrain.data.arrivals import (
    ARRIVALS,
    arrivals_file,
    in_arrival_order,
    newest_batch,
    record_arrival,
)
from tests.conftest import REPO


def _store(batches: Path, *names: str) -> None:
    batches.mkdir(parents=True, exist_ok=True)
    for name in names:
        (batches / name).write_text("a\n1\n")


def test_the_recorded_order_not_the_names(tmp_path: Path) -> None:
    batches = tmp_path / "batches"
    for name in ("zeta-0123456789ab.csv", "alpha-ba9876543210.parquet"):
        record_arrival(batches, name)  # ingest records a batch, then places it
        _store(batches, name)
    assert [p.name for p in in_arrival_order(batches)] == [
        "zeta-0123456789ab.csv",
        "alpha-ba9876543210.parquet",
    ]
    assert newest_batch(batches) == batches / "alpha-ba9876543210.parquet"
    record = (batches / ARRIVALS).read_text()
    assert record == "zeta-0123456789ab.csv\nalpha-ba9876543210.parquet\n"


def test_unrecorded_batches_are_older_and_a_name_without_its_file_is_passed_over(
    tmp_path: Path,
) -> None:
    batches = tmp_path / "batches"
    _store(batches, "old-b.csv", "old-a.csv")  # stored before the record was kept
    for name in ("new-x.csv", "killed-before-placing.csv", "new-w.csv", "new-x.csv"):
        record_arrival(batches, name)
    _store(batches, "new-x.csv", "new-w.csv", ".tmp-half.csv")
    # Unrecorded ones first, by name; then as recorded (new-x placed again after a kill).
    assert [p.name for p in in_arrival_order(batches)] == [
        "old-a.csv",
        "old-b.csv",
        "new-w.csv",
        "new-x.csv",
    ]


def test_no_batch_yet(tmp_path: Path) -> None:
    assert newest_batch(tmp_path / "batches") is None
    _store(tmp_path / "batches")
    assert newest_batch(tmp_path / "batches") is None
    _store(tmp_path / "batches", "only-by-hand.csv")
    assert newest_batch(tmp_path / "batches") == tmp_path / "batches" / "only-by-hand.csv"


@pytest.mark.parametrize(
    "params_file",
    [REPO / "params.yaml", *sorted((REPO / "tests/fixtures/init").glob("*.params.yaml"))],
    ids=lambda p: p.name,
)
def test_the_record_is_pinned_with_the_batches_and_a_dep_of_the_drift_stage(params_file):
    # The drift stage reads the record: inside paths.raw_data, data.dvc pins it (a fresh clone
    # pulls it) and dvc.yaml's `${paths.raw_data}` dep reruns the stage when it changes. The
    # committed params and those `retrain init` writes (each task's) keep it there.
    params = load_params(params_file)
    assert arrivals_file(params.paths.batches).is_relative_to(params.paths.raw_data)
    drift = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["drift"]
    assert "${paths.raw_data}" in drift["deps"]
