"""The data contract (issue 25): an accepted batch always trains, whatever ingest accepts
`prepare` reads unchanged, and what it would refuse or silently change is rejected first.

Each test lands crafted batches beside a pinned copy of the Telco table in tmp_path (raw data,
batches, landing and quarantine laid out as in the project) and runs the real ingest; the
accepted batches then go through the real `prepare` stage.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from retrain.config import IngestParams, Params
from retrain.data.io import read_file
from retrain.data.simulate import simulate
from retrain.errors import ConfigMismatch, DataError, ValidationFailed
from retrain.ingest import IngestRun, ingest_landing, mark_landed
from retrain.stages import prepare, validate
from tests.conftest import params_in, telco_schema

pytestmark = pytest.mark.data


@pytest.fixture()
def params(tmp_path, default_params_raw, raw_csv) -> Params:
    """The project's params with the Telco table pinned in tmp_path/data/raw (batches inside
    it, as in the project) and every output under tmp_path."""
    p = params_in(tmp_path, default_params_raw)
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    shutil.copyfile(raw_csv, raw / "telco_churn.csv")
    p = p.model_copy(update={"paths": p.paths.model_copy(update={"raw_data": raw})})
    p.paths.landing.mkdir(parents=True)
    return p


@pytest.fixture(scope="module")
def pinned(raw_csv) -> pd.DataFrame:
    return pd.read_csv(raw_csv)


@pytest.fixture(scope="module")
def batches(pinned) -> list[pd.DataFrame]:
    return simulate(pinned, telco_schema(), n_batches=4, batch_size=200, seed=21)


def land(params: Params, name: str, data: bytes) -> Path:
    path = params.paths.landing / name
    path.write_bytes(data)
    mark_landed(path)
    return path


def csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, lineterminator="\n").encode()


def parquet_bytes(df: pd.DataFrame, tmp: Path) -> bytes:
    df.to_parquet(tmp, index=False)
    return tmp.read_bytes()


def data_lines(data: bytes) -> int:
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1) - 1


def only(run: IngestRun):
    (result,) = run.results
    return result


def one_line(reason: str, *names: str) -> None:
    assert "\n" not in reason and len(reason) < 300, reason
    for name in names:
        assert name in reason, (name, reason)


# --- accepted: prepare reads them unchanged ---------------------------------------------------


def test_columns_in_another_order_are_stored_in_the_pinned_order_and_prepare_reads_them(
    params, pinned, batches, tmp_path
):
    order = list(pinned.columns)
    shuffled = [order[i] for i in (5, 0, 20, 3, *range(6, 20), 1, 2, 4)]
    assert sorted(shuffled) == sorted(order) and shuffled != order
    landed = {
        "reversed.csv": csv_bytes(batches[0][order[::-1]]),
        "shuffled.parquet": parquet_bytes(batches[1][shuffled], tmp_path / "b1.parquet"),
        "packed.csv.gz": gzip.compress(csv_bytes(batches[2][shuffled])),
        # whole numbers where the pinned data has decimals: a numeric feature's kind is "number"
        "whole.csv": csv_bytes(
            batches[3].assign(monthly_charges=batches[3].monthly_charges.astype(int))
        ),
    }
    for name, data in landed.items():
        land(params, name, data)
    run = ingest_landing(params, version=False)
    assert [r.status for r in run.results] == ["accepted"] * 4, run.results
    share, ids = params.ingest.holdout_share, params.dataset.id_column
    assert share > 0  # params.yaml's default: a share of each labelled batch is held out
    for result, batch in zip(run.results, [batches[2], batches[0], batches[1]], strict=False):
        stored = read_file(Path(result.destination))
        held = read_file(Path(result.holdout))
        assert list(stored.columns) == list(held.columns) == order  # the pinned order
        both = pd.concat([stored, held]).sort_values(ids).reset_index(drop=True)
        expected = batch[order].sort_values(ids).reset_index(drop=True)
        pd.testing.assert_frame_equal(both, expected)  # values as landed, every row once
        assert result.rows == len(batch) == len(stored) + result.holdout_rows
        assert result.holdout_rows == len(held) == round(share * len(batch))

    # The real `prepare` on the pinned table and the batches' rows that train: every such row
    # read, none dropped as a duplicate, no column refused, and no held-out row in any split.
    held_ids = set().union(*(set(read_file(Path(r.holdout))[ids]) for r in run.results))
    done = prepare.run(params)
    assert done.report.rows_in == len(pinned) + sum(len(b) for b in batches) - len(held_ids)
    assert done.report.rows_out == done.report.rows_in
    assert done.report.duplicate_ids == done.report.duplicate_rows == 0
    for split in (params.paths.train, params.paths.val, params.paths.test):
        assert not held_ids & set(pd.read_parquet(split)[ids])


# --- rejected: one line naming file and column, the bytes kept, the rows counted --------------


def _with(df: pd.DataFrame, column: str, values: list[object], rows=(3,)) -> pd.DataFrame:
    out = df.copy().astype({column: object})
    for row, value in zip(rows, values, strict=True):
        out.loc[row, column] = value
    return out.reset_index(drop=True)


def _email_ids(b: pd.DataFrame, pinned: pd.DataFrame) -> bytes:
    return csv_bytes(b.assign(customer_id=[f"c{i}@example.com" for i in range(len(b))]))


def _newline_id(b: pd.DataFrame, pinned: pd.DataFrame) -> bytes:
    data = csv_bytes(b)
    first_id = str(b["customer_id"].iloc[3]).encode()
    return data.replace(
        b"\n" + first_id + b",", b'\n"' + first_id[:3] + b"\n" + first_id[3:] + b'",'
    )


def _colliding_ids(b: pd.DataFrame, pinned: pd.DataFrame) -> bytes:
    out = b.copy()
    out.loc[:49, "customer_id"] = pinned["customer_id"].iloc[:50].to_numpy()
    return csv_bytes(out)


def _nul_in_value(b: pd.DataFrame, pinned: pd.DataFrame) -> bytes:
    return csv_bytes(_with(b, "tenure", ["3\x006"]))


def _big_field(b: pd.DataFrame, pinned: pd.DataFrame) -> bytes:
    return csv_bytes(_with(b, "payment_method", ["x" * 1_000_000]))


def _decimal_ids(b: pd.DataFrame, pinned: pd.DataFrame) -> bytes:
    return csv_bytes(b.assign(customer_id=b["customer_id"] + 0.5))


REJECTED: dict[str, tuple[Callable[[pd.DataFrame, pd.DataFrame], bytes], str, str]] = {
    # name: (landed bytes from (batch, pinned), column named, the message's stable part)
    "email_ids": (
        _email_ids,
        "customer_id",
        "holds text (e.g. data row 1) where the pinned data holds integers",
    ),
    "newline_in_id": (_newline_id, "customer_id", "holds a line break inside a quoted value"),
    "colliding_ids": (
        _colliding_ids,
        "customer_id",
        "50 id(s) already in the pinned data (1, 2, 3, 4, 5 ... 50 in all)",
    ),
    "nul_in_value": (_nul_in_value, "tenure", "on line 5 holds a control byte (0x00)"),
    "big_field": (
        _big_field,
        "payment_method",
        "on line 5 holds a value of 1000000 bytes, over the limit of 65536 "
        "(params.yaml ingest.max_field_bytes)",
    ),
    "decimal_ids": (
        _decimal_ids,
        "customer_id",
        "holds decimals (e.g. data row 1) where the pinned data holds integers",
    ),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_what_prepare_would_refuse_or_change_is_rejected_and_kept(params, pinned, batches, case):
    make, column, message = REJECTED[case]
    data = make(batches[0], pinned)
    landed = land(params, f"{case}.csv", data)
    result = only(ingest_landing(params, version=False))
    assert result.status == "rejected", result.reason
    one_line(result.reason, f"{case}.csv: ", f"column {column!r}", message)
    kept = Path(result.destination)
    assert kept.read_bytes() == data and not landed.exists()
    assert (kept.parent / "reason.txt").read_text().strip() == result.reason
    report = json.loads((kept.parent / "report.json").read_text())
    assert report["success"] is False and report["headline"] == result.reason
    assert report["rows"] == result.rows == data_lines(data)  # rows in = rows quarantined
    assert not params.paths.batches.exists() or not any(params.paths.batches.iterdir())


def test_ids_of_a_batch_accepted_in_the_same_run_are_taken(params, batches):
    first = batches[0]
    again = batches[1].assign(customer_id=first["customer_id"].to_numpy())
    land(params, "a.csv", csv_bytes(first))
    land(params, "b.csv", csv_bytes(again))
    run = ingest_landing(params, version=False)
    assert [r.status for r in run.results] == ["accepted", "rejected"]
    ids = ", ".join(str(i) for i in first["customer_id"].iloc[:5])
    one_line(run.results[1].reason, "b.csv: column 'customer_id': 200 id(s) already", ids)
    # rows in = rows accepted + rows quarantined
    assert sum(r.rows or 0 for r in run.results) == len(first) + len(again)


def test_prepare_refuses_pinned_files_of_another_kind_in_one_line(params, batches):
    # A batch that reached the pinned data without ingest (copied by hand): prepare says which
    # file and column, in one line, instead of the Parquet writer's multi-line traceback.
    params.paths.batches.mkdir(parents=True)
    bad = batches[0].assign(customer_id=[f"c{i}@example.com" for i in range(len(batches[0]))])
    bad.to_csv(params.paths.batches / "by-hand.csv", index=False)
    with pytest.raises(DataError) as err:
        prepare.run(params)
    one_line(str(err.value), "by-hand.csv: column 'customer_id' holds text")


# --- limits, non-regular files, config faults --------------------------------------------------


@pytest.mark.parametrize("packed", [False, True])
def test_a_file_over_the_size_limit_is_rejected_not_skipped(params, batches, packed):
    data = csv_bytes(batches[0])
    limit = len(data) - 1
    params = params.model_copy(update={"ingest": IngestParams(max_file_bytes=limit)})
    name = "big.csv.gz" if packed else "big.csv"
    landed = land(params, name, gzip.compress(data) if packed else data)
    kept_bytes = landed.read_bytes()
    result = only(ingest_landing(params, version=False))
    assert result.status == "rejected", result.reason
    said = f"unpacks to more than {limit} bytes" if packed else f"over the limit of {limit}"
    one_line(result.reason, name, said, "ingest.max_file_bytes")
    assert Path(result.destination).read_bytes() == kept_bytes
    if not packed:
        assert result.rows == len(batches[0])


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging (the old ingest blocked forever opening a FIFO)."""

    def _raise(*_: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    before = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)


@pytest.mark.parametrize("what", ["FIFO", "socket"])
def test_a_fifo_or_socket_is_refused_without_being_opened(params, batches, what):
    entry = params.paths.landing / "p.csv"
    if what == "FIFO":
        os.mkfifo(entry)
        said = "a FIFO (named pipe)"
    else:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(entry))  # the name stays when the socket is closed
        server.close()
        said = "a socket"
    mark_landed(entry)
    land(params, "good.csv", csv_bytes(batches[0]))
    with deadline(60):
        run = ingest_landing(params, version=False)
    got = {Path(r.source).name: r for r in run.results}
    assert got["good.csv"].status == "accepted"
    assert got["p.csv"].status == "refused"
    one_line(got["p.csv"].reason, f"p.csv: {said} is refused without being opened")
    report = json.loads((Path(got["p.csv"].destination) / "report.json").read_text())
    assert report["entry"] == said and report["headline"] == got["p.csv"].reason
    assert not entry.exists() and not (params.paths.landing / "p.csv.done").exists()
    assert not run.ok  # exit 1: the producer is told


def test_a_config_fault_is_reported_as_one_and_the_batch_stays_landed(params, batches):
    # A typo in params.yaml: the target column does not exist in the pinned data.
    wrong = params.model_copy(
        update={"dataset": params.dataset.model_copy(update={"target": "chrun"})}
    )
    landed = land(params, "good.csv", csv_bytes(batches[0]))
    with pytest.raises(ConfigMismatch) as err:
        ingest_landing(wrong, version=False)
    one_line(str(err.value), "params.yaml: dataset.target: column 'chrun'", "did you mean 'churn'")
    assert landed.read_bytes() == csv_bytes(batches[0])
    assert (params.paths.landing / "good.csv.done").exists()
    assert not params.paths.quarantine.exists() and not params.paths.batches.exists()
    # Fixed, the same batch is accepted.
    assert only(ingest_landing(params, version=False)).status == "accepted"


# --- a batch that skipped ingest: the `validate` stage applies the same contract --------------


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_a_batch_put_in_by_hand_stops_the_validate_stage_with_the_line_ingest_gives(
    params, pinned, batches, case
):
    # Copied into the pinned folder by hand (or committed in a pull request), never landed:
    # the stage before `prepare` says what ingest would have said, in the same words.
    make, column, message = REJECTED[case]
    params.paths.batches.mkdir(parents=True)
    (params.paths.batches / f"{case}.csv").write_bytes(make(batches[0], pinned))
    with pytest.raises(ValidationFailed) as err:
        validate.run(params)
    one_line(str(err.value), f"{case}.csv: ", f"column {column!r}", message)
    summary = json.loads(params.paths.validation_summary.read_text())
    assert summary.get("success") is not True
    assert str(err.value) in json.dumps(summary, ensure_ascii=False)


def test_the_validate_stage_passes_a_good_batch_put_in_by_hand(params, pinned, batches):
    params.paths.batches.mkdir(parents=True)
    (params.paths.batches / "by-hand.csv").write_bytes(csv_bytes(batches[0]))
    results = validate.run(params)
    assert [r.success for r in results] == [True, True]


def test_a_parquet_value_over_the_field_limit_is_rejected_and_kept(params, batches, tmp_path):
    data = parquet_bytes(_with(batches[0], "payment_method", ["x" * 1_000_000]), tmp_path / "b")
    landed = land(params, "big.parquet", data)
    result = only(ingest_landing(params, version=False))
    assert result.status == "rejected", result.reason
    one_line(
        result.reason,
        "big.parquet: column 'payment_method' on data row 4 holds a value of 1000000 bytes, "
        "over the limit of 65536 (params.yaml ingest.max_field_bytes)",
    )
    kept = Path(result.destination)
    assert kept.read_bytes() == data and not landed.exists()
    report = json.loads((kept.parent / "report.json").read_text())
    assert report["rows"] == result.rows == len(batches[0])  # rows in = rows quarantined
