"""retrain.infra.proc: a pid exists while its process runs, and not after it is reaped."""

from __future__ import annotations

import os
import subprocess
import sys

from retrain.infra.proc import pid_exists


def test_a_pid_exists_while_it_runs_and_not_once_reaped():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert pid_exists(child.pid)
        assert pid_exists(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert not pid_exists(child.pid)
