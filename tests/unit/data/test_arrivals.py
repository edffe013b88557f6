"""The order the stored batches arrived in, whatever their names' sort order."""

from __future__ import annotations

from pathlib import Path

from retrain.data.arrivals import ARRIVALS, in_arrival_order, newest_batch, record_arrival


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
