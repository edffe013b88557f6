"""retrain.infra.proc: a pid exists while its process runs, and not after it is reaped; the
processes that carry a variable are found, whatever their session."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from retrain.infra.proc import command_head, environ_marked, pid_exists


def test_a_pid_exists_while_it_runs_and_not_once_reaped():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert pid_exists(child.pid)
        assert pid_exists(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert not pid_exists(child.pid)


def test_finds_the_processes_carrying_a_variable_in_any_session(tmp_path):
    marker = f"m{os.getpid()}"
    # The marked one starts a child in a session of its own, as a flow run's tune workers.
    spawn = (
        "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
        "'import time; time.sleep(30)'], start_new_session=True); time.sleep(30)"
    )
    env = {**os.environ, "RETRAIN_TEST_MARK": marker}
    marked = subprocess.Popen([sys.executable, "-c", spawn], env=env, start_new_session=True)
    plain = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        deadline = time.monotonic() + 10
        while len(environ_marked("RETRAIN_TEST_MARK", marker)) < 2:
            assert time.monotonic() < deadline, "the marked grandchild never showed"
            time.sleep(0.1)
        found = environ_marked("RETRAIN_TEST_MARK", marker)
        assert marked.pid in found and plain.pid not in found and len(found) == 2
        (child,) = [pid for pid in found if pid != marked.pid]
        assert command_head(child, width=200).endswith("import time; time.sleep(30)")
    finally:
        for pid in environ_marked("RETRAIN_TEST_MARK", marker):
            os.kill(pid, 9)
        plain.kill()
        for proc in (marked, plain):
            proc.wait()
