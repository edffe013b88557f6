"""A failed retrain's one line: the batch its error names, else the one new batch, else the
stage (the restore itself is proven on a real run in tests/integration/test_flows.py); a run
stopped by a signal is restored too, and stays stopped; one killed outright, by the next."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from retrain.infra import dvc, git
from retrain.infra.proc import (
    ENV_GROUP_TOKEN,
    environ_marked,
    group_members,
    pid_exists,
    record_group,
)
from retrain.orchestration.failure import headline, recover_killed, restored_on_failure
from retrain.project import Project
from retrain.registry.lock import DVC_RECORD, exclusive, state_folder
from tests.conftest import REPO


def _project(tmp_path: Path) -> Project:
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    batches = tmp_path / "data" / "raw" / "batches"
    batches.mkdir(parents=True)
    for name in ("batch-0001.csv", "batch-0002.csv"):
        (batches / name).write_text("a\n1\n")
    return Project.load(tmp_path)


def test_the_batch_named_in_the_error_is_blamed(tmp_path: Path) -> None:
    project = _project(tmp_path)
    err = ValueError(f"{tmp_path}/data/raw/batches/batch-0002.csv: columns differ\n(extra [])")
    line = headline(project, "prepare", err, [])
    assert line.startswith("batch data/raw/batches/batch-0002.csv broke the retrain at stage ")
    assert "\n" not in line and line.endswith("as before the run)")


def test_the_one_new_batch_else_the_stage(tmp_path: Path) -> None:
    project = _project(tmp_path)
    new = [tmp_path / "data" / "raw" / "batches" / "batch-0001.csv"]
    err = RuntimeError("ArrowInvalid: could not convert")
    assert headline(project, "prepare", err, new).startswith(
        "batch data/raw/batches/batch-0001.csv broke the retrain at stage prepare: ArrowInvalid"
    )
    assert headline(project, "train", err, []).startswith("stage train failed: ArrowInvalid")
    two = [*new, tmp_path / "data" / "raw" / "batches" / "batch-0002.csv"]
    assert headline(project, "prepare", err, two).startswith(
        "stage prepare failed (batches new since the last run: data/raw/batches/batch-0001.csv, "
    )


def test_of_two_files_named_the_new_batch_is_blamed(tmp_path: Path) -> None:
    project = _project(tmp_path)
    new = [tmp_path / "data" / "raw" / "batches" / "batch-0002.csv"]
    err = ValueError(
        f"{tmp_path}/data/raw/batches/batch-0001.csv: columns differ from batch-0002.csv"
    )
    line = headline(project, "validate", err, new)
    assert line.startswith("batch data/raw/batches/batch-0002.csv broke the retrain at stage ")


def test_the_arrival_record_new_beside_the_batch_is_not_a_batch(tmp_path: Path) -> None:
    # The first batch accepted also brings data/raw/batches/arrivals.txt (the arrival order,
    # retrain.data.arrivals), new since the last run too: the one new batch is still blamed.
    project = _project(tmp_path)
    batches = tmp_path / "data" / "raw" / "batches"
    new = [batches / "arrivals.txt", batches / "batch-0001.csv"]
    err = RuntimeError("ArrowInvalid: could not convert")
    assert headline(project, "prepare", err, new).startswith(
        "batch data/raw/batches/batch-0001.csv broke the retrain at stage prepare: ArrowInvalid"
    )


class _Cancelled(BaseException):
    """As Prefect's TerminationSignal: what a cancelled run's SIGTERM raises in the flow."""


def _dvc_repo(root: Path) -> str:
    """git + DVC, the checkout's params.yaml, one stage with an uncached output, reproduced;
    returns its dvc.lock."""
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, env=git.identity_env(root))
    dvc.run(root, "init", "-q")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    stage = {"cmd": "echo 1 > m.json", "outs": [{"m.json": {"cache": False}}]}
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"m": stage}}))
    dvc.run(root, "repro")
    return (root / "dvc.lock").read_text()


def test_a_stopped_run_is_restored_and_still_ends_as_stopped(tmp_path: Path) -> None:
    # A retrain cancelled mid-stage (the UI, `retrain stack down`) must leave the workspace as
    # it found it, like a failed one, and stay a cancellation (not become StageFailed).
    lock = _dvc_repo(tmp_path)
    said: list[str] = []
    with pytest.raises(_Cancelled):
        with restored_on_failure(Project.load(tmp_path), said.append):
            (tmp_path / "m.json").write_text("2\n")  # a stage half way through
            (tmp_path / "dvc.lock").write_text(lock.replace("m.json", "x.json"))
            raise _Cancelled
    assert (tmp_path / "m.json").read_text() == "1\n"
    assert (tmp_path / "dvc.lock").read_text() == lock
    assert said == [
        "run stopped (_Cancelled): workspace restored (dvc.lock and stage outputs as before)"
    ]


KILLED = r"""
import os, signal, sys
from pathlib import Path
from retrain.orchestration.failure import restored_on_failure
from retrain.project import Project

root, keep = Path(sys.argv[1]), Path(sys.argv[2])
with restored_on_failure(Project.load(root), keep=keep):
    (root / "m.json").write_text("2\n")
    (root / "dvc.lock").write_text("half written")
    os.kill(os.getpid(), signal.SIGKILL)  # past the runner's grace: nothing runs after this
"""


def test_a_run_killed_outright_is_restored_by_the_next(tmp_path: Path) -> None:
    # SIGKILL runs no handler: the saved state stays in `keep`, and the next run restores it.
    repo = tmp_path / "repo"
    repo.mkdir()
    lock = _dvc_repo(repo)
    keep = state_folder(repo / ".dvc" / "tmp" / "retrain.lock")
    killed = subprocess.run([sys.executable, "-c", KILLED, str(repo), str(keep)])
    assert killed.returncode == -signal.SIGKILL
    assert (repo / "dvc.lock").read_text() == "half written"
    said: list[str] = []
    assert recover_killed(Project.load(repo), keep, said.append)
    assert (repo / "m.json").read_text() == "1\n"
    assert (repo / "dvc.lock").read_text() == lock
    assert not keep.exists()
    (line,) = said
    assert line.startswith("restored dvc.lock and the stage outputs: a retrain (pid ")
    assert not recover_killed(Project.load(repo), keep, said.append)  # nothing left to do


def test_a_restore_that_fails_keeps_the_saved_state_for_the_next_run(tmp_path: Path) -> None:
    # The restore itself fails (here DVC's checkout, on a dvc.yaml it cannot read): the saved
    # state must survive the block, so the next retrain can put the workspace back; a restore
    # that succeeds leaves nothing behind.
    repo = tmp_path / "repo"
    repo.mkdir()
    lock = _dvc_repo(repo)
    pipeline = (repo / "dvc.yaml").read_text()
    keep = state_folder(repo / ".dvc" / "tmp" / "retrain.lock")
    said: list[str] = []
    with pytest.raises(_Cancelled):
        with restored_on_failure(Project.load(repo), said.append, keep=keep):
            (repo / "m.json").write_text("2\n")
            (repo / "dvc.lock").write_text("half written")
            (repo / "dvc.yaml").write_text("stages: [not, a, mapping\n")
            raise _Cancelled
    (repo / "dvc.yaml").write_text(pipeline)
    (line,) = said
    assert "restore FAILED" in line and "the next retrain restores it" in line
    assert (keep / "manifest.json").exists()
    assert recover_killed(Project.load(repo), keep, said.append)
    assert (repo / "m.json").read_text() == "1\n"
    assert (repo / "dvc.lock").read_text() == lock
    assert not keep.exists()


def _killed_on_commit_a(tmp_path: Path) -> tuple[Path, Path, dict[str, str], str]:
    """A repo committed as A, then a run killed mid-pipeline in it: (repo, its saved state,
    git's environment, dvc.lock before the run)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    lock = _dvc_repo(repo)
    env = git.identity_env(repo)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "A"], cwd=repo, check=True, env=env)
    keep = state_folder(repo / ".dvc" / "tmp" / "retrain.lock")
    killed = subprocess.run([sys.executable, "-c", KILLED, str(repo), str(keep)])
    assert killed.returncode == -signal.SIGKILL
    return repo, keep, env, lock


@pytest.mark.parametrize("changed", ["dvc.lock", "dvc.yaml"])
def test_a_state_saved_on_another_commit_is_not_put_back(tmp_path: Path, changed: str) -> None:
    # Killed on commit A; the user then pulls or commits (B): B's pipeline must not be undone.
    repo, keep, env, _ = _killed_on_commit_a(tmp_path)
    pipeline = (repo / "dvc.yaml").read_text()
    (repo / changed).write_text(f"# B's\n{pipeline}" if changed == "dvc.yaml" else "B's lock\n")
    subprocess.run(["git", "commit", "-qm", "B", "--", changed], cwd=repo, check=True, env=env)
    said: list[str] = []
    assert not recover_killed(Project.load(repo), keep, said.append)
    if changed == "dvc.lock":
        assert (repo / "dvc.lock").read_text() == "B's lock\n"
    assert not keep.exists()
    (line,) = said
    assert line.startswith("not restored: a retrain (pid ") and "another" in line


def test_a_state_saved_before_an_ingest_commit_is_still_put_back(tmp_path: Path) -> None:
    # Killed on A; an ingest then took the lock and committed data.dvc (B, same dvc.lock):
    # the half-updated outputs must still be put back, not dropped as another commit's.
    repo, keep, env, lock = _killed_on_commit_a(tmp_path)
    (repo / "data.dvc").write_text("outs:\n- md5: 0123\n  path: raw\n")
    subprocess.run(["git", "add", "data.dvc"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "ingest"], cwd=repo, check=True, env=env)
    said: list[str] = []
    assert recover_killed(Project.load(repo), keep, said.append)
    assert (repo / "m.json").read_text() == "1\n"
    assert (repo / "dvc.lock").read_text() == lock
    (line,) = said
    assert line.startswith("restored dvc.lock and the stage outputs")


KILLED_IN_STAGE = r"""
import sys
from pathlib import Path
from retrain.infra import dvc
from retrain.orchestration.failure import restored_on_failure
from retrain.project import Project

root, keep = Path(sys.argv[1]), Path(sys.argv[2])
with restored_on_failure(Project.load(root), keep=keep):
    dvc.run(root, "repro", "--single-item", "tick", record=keep / "dvc-group.json")
"""

# Keeps writing m.json (stage m's output) and tick.txt, and prints nothing: a stage that
# printed would die of the broken pipe its killed caller leaves it.
TICK = "while true; do echo 2 > m.json; date +%N >> tick.txt; sleep 0.05; done"


def test_the_dvc_repro_of_a_killed_run_is_stopped_before_the_restore(tmp_path: Path) -> None:
    # The flow runs DVC in a session of its own; killed outright (SIGKILL, the OOM killer), it
    # leaves DVC and its stage running. The next retrain must stop them before it restores,
    # or the stage writes over the restored m.json (and dvc.lock, when it ends).
    repo = tmp_path / "repo"
    repo.mkdir()
    lock = _dvc_repo(repo)
    pipeline = yaml.safe_load((repo / "dvc.yaml").read_text())
    pipeline["stages"]["tick"] = {"cmd": TICK, "outs": [{"tick.txt": {"cache": False}}]}
    (repo / "dvc.yaml").write_text(yaml.safe_dump(pipeline))
    keep = state_folder(repo / ".dvc" / "tmp" / "retrain.lock")
    # Every process of this test carries the marker: whatever fails, none outlives it (the
    # stage's `while true` would tick for ever).
    marker = {"RETRAIN_TEST_MARK": uuid.uuid4().hex}
    flow = subprocess.Popen(
        [sys.executable, "-c", KILLED_IN_STAGE, str(repo), str(keep)], env={**os.environ, **marker}
    )
    try:
        deadline = time.monotonic() + 60
        while not (repo / "tick.txt").exists():
            assert flow.poll() is None and time.monotonic() < deadline, "the stage never started"
            time.sleep(0.05)
        flow.kill()  # SIGKILL: no handler, no `finally` of the flow's runs
        flow.wait()
        dvc_pid = json.loads((keep / DVC_RECORD).read_text())["pid"]
        assert group_members(dvc_pid), "DVC's group outlived its flow"
        said: list[str] = []
        # The next retrain: under the lock (which stops DVC first), then the restore.
        with exclusive(repo / ".dvc" / "tmp" / "retrain.lock", "next", 5, on_wait=said.append):
            assert not group_members(dvc_pid)
            assert recover_killed(Project.load(repo), keep, said.append)
        time.sleep(0.5)  # a stage still running would rewrite both files by now
        assert (repo / "m.json").read_text() == "1\n"
        assert not (repo / "tick.txt").exists()
        assert (repo / "dvc.lock").read_text() == lock
        assert said[0] == f"stopped the dvc repro (pid {dvc_pid}) a killed retrain left running"
        assert said[1].startswith("restored dvc.lock and the stage outputs")
    finally:
        _kill_marked(flow, *next(iter(marker.items())))


def _kill_marked(proc: subprocess.Popen[bytes], name: str, value: str) -> None:
    """Kill `proc` and every process whose environment sets `name` to `value`."""
    proc.kill()
    proc.wait()
    for pid in environ_marked(name, value):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_recorded_pid_now_another_process_is_not_stopped(tmp_path: Path) -> None:
    # The killed run's DVC ended long ago and its pid went to another process (a group leader
    # too): the start time tells them apart, and that process is left alone.
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        keep = tmp_path / "retrain.lock.restore"
        record_group(keep / DVC_RECORD, uuid.uuid4().hex, other.pid)
        record = json.loads((keep / DVC_RECORD).read_text())
        record["start"] -= 1  # the recorded process started before this one
        (keep / DVC_RECORD).write_text(json.dumps(record))
        said: list[str] = []
        with exclusive(tmp_path / "retrain.lock", "next", 5, on_wait=said.append):
            assert not recover_killed(_project(tmp_path), keep, said.append)
        assert said == [] and other.poll() is None and pid_exists(other.pid)
        assert not keep.exists()
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("text", ["", "{not json", '{"token": "t", "leader": 1}', "[1, 2]"])
def test_a_corrupt_record_is_dropped_and_the_restore_goes_on(tmp_path: Path, text: str) -> None:
    # A power loss leaves an empty record; kept, or raising, it would block every retrain.
    lock = _dvc_repo(tmp_path)
    keep = state_folder(tmp_path / ".dvc" / "tmp" / "retrain.lock")
    killed = subprocess.run([sys.executable, "-c", KILLED, str(tmp_path), str(keep)])
    assert killed.returncode == -signal.SIGKILL
    (keep / DVC_RECORD).write_text(text)
    said: list[str] = []
    with exclusive(tmp_path / ".dvc" / "tmp" / "retrain.lock", "next", 5, on_wait=said.append):
        assert recover_killed(Project.load(tmp_path), keep, said.append)
    assert (tmp_path / "m.json").read_text() == "1\n"
    assert (tmp_path / "dvc.lock").read_text() == lock
    (line,) = said
    assert line.startswith("restored dvc.lock and the stage outputs")


def test_a_stage_still_running_is_stopped_before_the_failure_restore(tmp_path: Path) -> None:
    # A second signal cuts dvc.run's stop short: its group is still running (recorded) when the
    # failure is restored; it must be stopped first, or it writes over the restored m.json.
    _dvc_repo(tmp_path)
    keep = tmp_path / "retrain.lock.restore"
    token = uuid.uuid4().hex
    stage = None
    try:
        with pytest.raises(_Cancelled):
            with restored_on_failure(Project.load(tmp_path), keep=keep):
                stage = subprocess.Popen(
                    ["sh", "-c", "while true; do echo 2 > m.json; sleep 0.05; done"],
                    cwd=tmp_path,
                    env={**os.environ, ENV_GROUP_TOKEN: token},
                    start_new_session=True,
                )
                record_group(keep / DVC_RECORD, token, stage.pid)
                while not environ_marked(ENV_GROUP_TOKEN, token):
                    time.sleep(0.05)
                raise _Cancelled
        stage.wait(timeout=5)  # stopped before the restore
        time.sleep(0.3)  # a stage still running would rewrite m.json by now
        assert (tmp_path / "m.json").read_text() == "1\n"
    finally:
        if stage is not None:
            _kill_marked(stage, ENV_GROUP_TOKEN, token)


def test_a_dvc_killed_before_its_pid_was_recorded_is_stopped_by_its_token(tmp_path: Path) -> None:
    # Killed between DVC's start and its pid's record: only the token finds it, and the line
    # names no pid (not "pid None").
    keep = tmp_path / "retrain.lock.restore"
    token = uuid.uuid4().hex
    record_group(keep / DVC_RECORD, token)
    stage = subprocess.Popen(["sleep", "60"], env={**os.environ, ENV_GROUP_TOKEN: token})
    try:
        while not environ_marked(ENV_GROUP_TOKEN, token):
            time.sleep(0.05)
        said: list[str] = []
        with exclusive(tmp_path / "retrain.lock", "next", 5, on_wait=said.append):
            assert stage.wait(timeout=5) == -signal.SIGTERM
        assert said == ["stopped the dvc repro a killed retrain left running"]
    finally:
        _kill_marked(stage, ENV_GROUP_TOKEN, token)
