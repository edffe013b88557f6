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
