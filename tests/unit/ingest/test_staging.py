"""The staged copy of a landed entry: only a regular file's bytes are ever read."""

from __future__ import annotations

import errno
import gzip
import os
import signal

import pytest

from retrain.ingest.staging import NotRegular, copy_regular, count_rows, decompress


@pytest.fixture()
def alarm():
    """Fail instead of hanging: opening a FIFO without O_NONBLOCK waits for a writer."""

    def _raise(*_: object) -> None:
        raise TimeoutError("copy_regular blocked")

    before = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, before)


def test_a_fifo_swapped_in_after_the_check_is_refused_on_the_descriptor(tmp_path, alarm):
    fifo = tmp_path / "p.csv"
    os.mkfifo(fifo)
    with pytest.raises(NotRegular, match="a FIFO"):
        copy_regular(fifo, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


def test_a_link_is_never_followed_and_a_file_is_copied(tmp_path):
    target = tmp_path / "t.csv"
    target.write_bytes(b"a,b\n1,2\n")
    (tmp_path / "l.csv").symlink_to(target)
    with pytest.raises(OSError) as err:
        copy_regular(tmp_path / "l.csv", tmp_path / "copy")
    assert err.value.errno == errno.ELOOP
    copy_regular(target, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == target.read_bytes()
    assert (tmp_path / "copy").stat().st_ino != target.stat().st_ino


def test_gunzip_stops_at_the_limit(tmp_path):
    packed = tmp_path / "b.csv.gz"
    packed.write_bytes(gzip.compress(b"0" * 100_000))
    reason = decompress(packed, tmp_path / "b.csv", "b.csv.gz", 10_000)
    assert reason == (
        "b.csv.gz: unpacks to more than 10000 bytes, the limit (params.yaml ingest.max_file_bytes)"
    )
    assert (tmp_path / "b.csv").stat().st_size <= 10_000
    assert decompress(packed, tmp_path / "c.csv", "b.csv.gz", 100_000) is None


@pytest.mark.parametrize(
    ("data", "rows"), [(b"a\n1\n2\n", 2), (b"a\n1\n2", 2), (b"", 0), (b"a\n", 0)]
)
def test_rows_are_data_lines(tmp_path, data, rows):
    (tmp_path / "t.csv").write_bytes(data)
    assert count_rows(tmp_path / "t.csv", ".csv") == rows
