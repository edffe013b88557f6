"""One retrain at a time: the second fails clearly or waits; a killed holder frees the lock."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from retrain.cli import app
from retrain.infra import dvc
from retrain.infra.git import identity_env
from retrain.infra.proc import ENV_GROUP_TOKEN, environ_marked, group_members, record_group
from retrain.registry.lock import RetrainBusy, dvc_record, exclusive

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


# A retrain holding the lock, killed outright mid-stage (SIGKILL, the OOM killer): its
# `dvc repro` runs in a session of its own, recorded beside the lock, and outlives it.
KILLED_IN_STAGE = r"""
import sys
from pathlib import Path
from retrain.infra import dvc
from retrain.registry.lock import dvc_record, exclusive

root, path = Path(sys.argv[1]), Path(sys.argv[2])
with exclusive(path, "run-killed", 0):
    dvc.run(root, "repro", "tick", record=dvc_record(path))
"""

# Writes its output for ever, printing nothing (a stage that printed would die of the broken
# pipe its killed caller leaves it).
TICK = "while true; do date +%N >> tick.txt; sleep 0.05; done"


def test_whoever_takes_the_lock_stops_the_dvc_repro_a_killed_retrain_left(tmp_path: Path) -> None:
    # Before, only the next retrain stopped it: an ingest, rollback or canary taken meanwhile
    # ran beside a stage still writing outputs and holding DVC's own lock.
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, env=identity_env(tmp_path))
    dvc.run(tmp_path, "init", "-q")
    tick = {"cmd": TICK, "outs": [{"tick.txt": {"cache": False}}]}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"tick": tick}}))
    path = tmp_path / ".dvc" / "tmp" / "retrain.lock"
    mark = {"RETRAIN_TEST_MARK": uuid.uuid4().hex}  # every process of this test carries it
    retrain = subprocess.Popen(
        [sys.executable, "-c", KILLED_IN_STAGE, str(tmp_path), str(path)],
        env={**os.environ, **mark},
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "tick.txt").exists():
            assert retrain.poll() is None and time.monotonic() < deadline, "no stage started"
            time.sleep(0.05)
        retrain.kill()
        retrain.wait()
        orphan = json.loads(dvc_record(path).read_text())["pid"]
        assert group_members(orphan), "DVC's group outlived its retrain"
        said: list[str] = []
        with exclusive(path, "other-1", 5, command="ingest", on_wait=said.append):
            assert not group_members(orphan)
            size = (tmp_path / "tick.txt").stat().st_size
            time.sleep(0.5)  # a stage still running would have written by now
            assert (tmp_path / "tick.txt").stat().st_size == size
            # DVC's own lock is free again: what the command does next with DVC can run.
            status = subprocess.run(
                [sys.executable, "-m", "dvc", "status", "-q"], cwd=tmp_path, timeout=60
            )
            assert status.returncode in (0, 1), status  # 1: changed; a held lock exits 255
        assert said == [f"stopped the dvc repro (pid {orphan}) a killed retrain left running"]
        assert not dvc_record(path).exists()
    finally:
        retrain.kill()
        retrain.wait()
        for pid in environ_marked(*next(iter(mark.items()))):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _orphan(lock_path: Path) -> subprocess.Popen[bytes]:
    """A killed retrain's DVC, as the lock finds it: a session of its own, recorded, running."""
    token = uuid.uuid4().hex
    record_group(dvc_record(lock_path), token)
    orphan = subprocess.Popen(
        ["sleep", "60"], env={**os.environ, ENV_GROUP_TOKEN: token}, start_new_session=True
    )
    record_group(dvc_record(lock_path), token, orphan.pid)
    return orphan


@pytest.mark.parametrize(
    "command",
    [["rollback"], ["canary", "start", "v1.0.0"], ["canary", "abort"], ["ingest"]],
    ids=["rollback", "canary-start", "canary-abort", "ingest"],
)
def test_each_command_that_takes_the_lock_stops_the_orphan_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, default_params_raw: dict, command: list[str]
) -> None:
    # The commands themselves, in a checkout with nothing to roll back or ingest: each fails
    # after it took the lock, and has stopped the killed retrain's DVC by then.
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, env=identity_env(tmp_path))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(default_params_raw, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    orphan = _orphan(tmp_path / default_params_raw["paths"]["retrain_lock"])
    try:
        out = CliRunner().invoke(app, command)
        assert orphan.wait(timeout=5) == -signal.SIGTERM, out.output
        assert f"stopped the dvc repro (pid {orphan.pid}) a killed retrain left running" in (
            out.output
        )
    finally:
        orphan.kill()
        orphan.wait()


def test_a_copied_record_stops_nothing_and_another_machines_is_kept(tmp_path: Path) -> None:
    # A checkout copied while its retrain ran (cp -a, a backup) holds a copy of the record:
    # the copy's lock must not stop the original's DVC, which its own lock still stops.
    original = tmp_path / "a" / "retrain.lock"
    orphan = _orphan(original)
    try:
        shutil.copytree(tmp_path / "a", tmp_path / "b")
        copy = tmp_path / "b" / "retrain.lock"
        said: list[str] = []
        with exclusive(copy, "copy", 5, on_wait=said.append):
            assert orphan.poll() is None and said == []
        assert not dvc_record(copy).exists()  # not the copy's to keep
        # A record made on another machine sharing the folder (NFS): its pids are not ours.
        elsewhere = json.loads(dvc_record(original).read_text())
        (tmp_path / "c").mkdir()
        dvc_record(tmp_path / "c" / "retrain.lock").parent.mkdir()
        elsewhere["host"] = "another-machine"
        dvc_record(tmp_path / "c" / "retrain.lock").write_text(json.dumps(elsewhere))
        with exclusive(tmp_path / "c" / "retrain.lock", "c", 5, on_wait=said.append):
            assert orphan.poll() is None and said == []
        assert dvc_record(tmp_path / "c" / "retrain.lock").exists()  # kept for that machine
        with exclusive(original, "next", 5, on_wait=said.append):
            assert orphan.wait(timeout=5) == -signal.SIGTERM
        assert said == [f"stopped the dvc repro (pid {orphan.pid}) a killed retrain left running"]
    finally:
        orphan.kill()
        orphan.wait()
