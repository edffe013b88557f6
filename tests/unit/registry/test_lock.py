"""One retrain at a time: the second fails clearly or waits; a killed holder frees the lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from retrain.registry.lock import RetrainBusy, exclusive

HOLD = """
import sys, time
from pathlib import Path
from retrain.registry.lock import exclusive
with exclusive(Path(sys.argv[1]), "run-in-child", 0):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_retrain_fails_at_once_naming_the_first(tmp_path: Path):
    path = tmp_path / "retrain.lock"
    with exclusive(path, "run-a", 0):
        with pytest.raises(RetrainBusy, match=rf"pid {os.getpid()}, run run-a"):
            with exclusive(path, "run-b", 0):
                pass
    with exclusive(path, "run-b", 0):  # free again once the first is done
        pass


def test_a_second_retrain_waits_for_the_first(tmp_path: Path):
    path = tmp_path / "retrain.lock"
    released = threading.Event()

    def first() -> None:
        with exclusive(path, "run-a", 0):
            started.set()
            time.sleep(1.0)
            released.set()

    started = threading.Event()
    thread = threading.Thread(target=first)
    thread.start()
    started.wait(5)
    with exclusive(path, "run-b", 10, poll_s=0.05):
        assert released.is_set()  # it got the lock only after the first let go
    thread.join()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path):
    path = tmp_path / "retrain.lock"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(RetrainBusy, match="run-in-child"):
            with exclusive(path, "run-b", 0):
                pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with exclusive(path, "run-b", 0):
        pass


HOLD_AS = """
import sys, time
from pathlib import Path
from retrain.registry.lock import exclusive
with exclusive(Path(sys.argv[1]), "batch-7.csv", 0, command="ingest"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_waiting_command_says_for_whom_and_how_long_periodically(tmp_path: Path):
    path = tmp_path / "retrain.lock"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_AS, str(path)], stdout=subprocess.PIPE, text=True
    )
    said: list[str] = []
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(RetrainBusy, match=rf"another ingest holds .*pid {child.pid}"):
            with exclusive(
                path, "run-b", 1.6, poll_s=0.05, on_wait=said.append, report_every_s=0.5
            ):
                pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # At once, then every report_every_s: who waits, for which command, run and pid, how long.
    assert len(said) >= 3, said
    for line in said:
        assert line.startswith("retrain run-b waiting for the project lock")
        assert f"held by ingest (pid {child.pid}, run batch-7.csv, since " in line
    waited = [int(line.split("waited ")[1].split("s")[0]) for line in said]
    assert waited[0] == 0 and waited == sorted(waited) and waited[-1] >= 1
    assert all(line.endswith("of at most 1.6s") for line in said)
