"""A cancelled retrain gives the tune stage 10 s (retrain.infra.dvc's stop) before killing it:
its workers must be gone well within that, however many there are and however long their
trial would take to finish after SIGTERM."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from retrain.tuning.parallel import _stop_workers

# A worker busy with a trial: it ignores SIGTERM (a Prefect task worker leaves only once its
# trial is done, minutes later).
BUSY = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_every_worker_is_gone_within_one_shared_grace():
    workers = [
        subprocess.Popen([sys.executable, "-c", BUSY], start_new_session=True) for _ in range(3)
    ]
    time.sleep(0.5)  # each has set its handler
    began = time.monotonic()
    _stop_workers(workers, grace=2.0)
    took = time.monotonic() - began
    assert all(w.returncode is not None for w in workers)
    assert not any(_alive(w.pid) for w in workers)
    # One grace for all (not 2 s per worker: 6 s), within the 10 s the stage is given.
    assert took < 5.0, f"{took:.1f} s"
