"""The one DVC client, against real git + DVC repositories in temporary folders."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from retrain.infra import dvc, git
from retrain.infra.proc import group_members, pid_exists
from tests.conftest import REPO

# b depends on a's output and is listed first: file order is not dependency order.
PIPELINE = {
    "stages": {
        "b": {"cmd": "cat a.txt > b.txt", "deps": ["a.txt"], "outs": ["b.txt"]},
        "a": {"cmd": "cp in.txt a.txt", "deps": ["in.txt"], "outs": ["a.txt"]},
        "c": {"cmd": "echo c > c.txt", "outs": ["c.txt"]},
    }
}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """git + DVC, a pinned data file and a 3-stage pipeline, committed (built once)."""
    root = tmp_path_factory.mktemp("dvc") / "repo"
    root.mkdir()
    env = git.identity_env(root)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True, env=env)
    dvc.run(root, "init", "-q")
    (root / "data").mkdir()
    (root / "data" / "table.csv").write_text("x,y\n1,0\n")
    dvc.run(root, "add", "-q", "data/table.csv")
    (root / "in.txt").write_text("hello\n")
    (root / dvc.PIPELINE_FILE).write_text(yaml.safe_dump(PIPELINE, sort_keys=False))
    for args in (("add", "-A"), ("commit", "-qm", "first")):
        subprocess.run(["git", *args], cwd=root, check=True, env=env, capture_output=True)
    return root


@pytest.fixture()
def repo(template: Path, tmp_path: Path) -> Path:
    """A copy of the template with its own local remote (the default) and no analytics."""
    root = Path(shutil.copytree(template, tmp_path / "repo", symlinks=True))
    (root / ".dvc" / "config").write_text(
        "[core]\n    remote = local\n    analytics = false\n"
        f"['remote \"local\"']\n    url = {tmp_path / 'remote'}\n"
    )
    return root


def test_stage_order_follows_the_graph_not_the_file(repo):
    assert list(PIPELINE["stages"]) == ["b", "a", "c"]
    order = dvc.stage_order(repo)
    assert sorted(order) == ["a", "b", "c"] and order.index("a") < order.index("b")
    assert order == ["a", "b", "c"]  # ties keep the file's order


def test_project_stage_order_survives_a_reordered_dvc_yaml(tmp_path):
    """The project's own dvc.yaml, its stages listed in reverse: DVC's graph still puts
    validate first and report last (the retrain flow runs the stages in this order)."""
    root = tmp_path / "proj"
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    dvc.run(root, "init", "-q")
    shutil.copy2(REPO / "params.yaml", root / "params.yaml")
    pipeline = yaml.safe_load((REPO / dvc.PIPELINE_FILE).read_text())
    listed = list(pipeline["stages"])
    pipeline["stages"] = dict(reversed(pipeline["stages"].items()))
    (root / dvc.PIPELINE_FILE).write_text(yaml.safe_dump(pipeline, sort_keys=False))
    order = dvc.stage_order(root)
    assert order[0] == "validate" and order[-1] == "report" and sorted(order) == sorted(listed)
    assert order.index("prepare") < order.index("tune") < order.index("train")
    assert order.index("train") < order.index("evaluate")


def test_repro_status_and_which_stages_ran(repo):
    lines = dvc.run(repo, "repro")
    assert lines.code == 0
    assert dvc.stages_run(lines) == ["a", "b", "c"] and dvc.stage_ran(lines, "b")
    assert (repo / "b.txt").read_text() == "hello\n"
    assert dvc.stages_run(dvc.run(repo, "repro")) == []  # up to date: nothing runs
    assert dvc.json_output(repo, "status") == {}
    (repo / "in.txt").write_text("changed\n")
    status = dvc.json_output(repo, "status")
    assert set(status) == {"a"}, status
    assert dvc.stages_run(dvc.run(repo, "repro")) == ["a", "b"]  # c is up to date
    outs = dvc.lock_outputs((repo / dvc.LOCK_FILE).read_text())
    assert set(outs) == {"a.txt", "b.txt", "c.txt"} and all(len(m) == 32 for m in outs.values())
    assert dvc.cached_file(repo, outs["b.txt"]).read_text() == "changed\n"
    assert dvc.in_cache(repo, outs["a.txt"]) and not dvc.in_cache(repo, "0" * 32)


def test_pins_the_cache_and_the_remote(repo, tmp_path):
    pin = dvc.read_pin(repo / "data" / "table.csv.dvc")
    assert pin.path == repo / "data" / "table.csv"
    assert dvc.workspace_hash(repo, pin.path) == pin.md5
    assert dvc.pinned_md5((repo / "data" / "table.csv.dvc").read_text()) == pin.md5
    assert dvc.pinned_md5("not: [a pin") is None and dvc.pinned_md5(None) is None
    assert dvc.default_remote(repo) == ("local", str(tmp_path / "remote"))
    # New data: commit the pin, push it; the remote then holds exactly that hash.
    pin.path.write_text("x,y\n1,0\n2,1\n")
    dvc.commit_and_push(repo, [pin.dvc_file])
    new = dvc.read_pin(pin.dvc_file)
    assert new.md5 != pin.md5 and new.md5 == dvc.workspace_hash(repo, pin.path)
    remote_file = tmp_path / "remote" / "files" / "md5" / new.md5[:2] / new.md5[2:]
    assert remote_file.read_text() == "x,y\n1,0\n2,1\n"
    with pytest.raises(dvc.DataError, match="not a DVC file with one output"):
        dvc.read_pin(repo / "in.txt")


def test_failures_are_one_line_errors(repo):
    with pytest.raises(dvc.DvcError) as err:
        dvc.run(repo, "repro", "no-such-stage")
    assert "\n" not in str(err.value) and "dvc repro no-such-stage failed (exit" in str(err.value)
    assert dvc.run(repo, "repro", "no-such-stage", check=False).code != 0


def test_running_stage_lines_are_parsed_once():
    output = (
        "Verifying data sources in stage: 'data.dvc'\n\n"
        "Running stage 'validate':\n> python -m retrain.stages.validate\n"
        "Stage 'prepare' didn't change, skipping\n"
        "Running stage 'train':\n> python -m retrain.stages.train\n"
        "Running stage 'my-stage@1':\n"
    )
    assert dvc.stages_run(output) == ["validate", "train", "my-stage@1"]
    assert dvc.stages_run(output.splitlines()) == dvc.stages_run(output)
    assert dvc.stage_started("Stage 'prepare' didn't change, skipping") is None


class _Cancelled(BaseException):
    """As Prefect's TerminationSignal: raised in the flow by a cancelled run's SIGTERM."""


def test_an_interrupted_run_stops_the_stage_it_was_running(repo):
    # A cancelled retrain restores the workspace: the stage must be gone first, or it would
    # write its outputs over the restored ones (and a tune stage keep its workers running).
    stages = {"stages": {"slow": {"cmd": "echo started $$; exec sleep 60", "outs": ["s.txt"]}}}
    (repo / dvc.PIPELINE_FILE).write_text(yaml.safe_dump(stages))
    seen: list[int] = []

    def cancel_once_started(line: str) -> None:
        if line.startswith("started "):
            seen.append(int(line.split()[1]))
            raise _Cancelled

    with pytest.raises(_Cancelled):
        dvc.run(repo, "repro", "slow", on_line=cancel_once_started)
    (stage,) = seen
    deadline = time.monotonic() + 5  # orphaned by DVC's exit: reaped by init
    while pid_exists(stage) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_exists(stage)


def test_a_recorded_run_is_forgotten_once_dvc_ends(repo, tmp_path):
    # While DVC runs, the record names its group (a killed caller's successor stops it by it);
    # once DVC ends normally there is nothing to stop, and no record.
    record = tmp_path / "state" / "dvc-group.json"
    seen: list[dict] = []
    dvc.run(
        repo,
        "repro",
        "c",
        on_line=lambda _: seen.append(json.loads(record.read_text())),
        record=record,
    )
    assert seen and all(rec["pid"] > 0 and rec["start"] > 0 for rec in seen)
    assert not record.exists()


def test_a_failed_record_still_stops_dvc(repo, tmp_path, monkeypatch):
    # Recording the pid fails (a full disk, a signal): DVC, started already, must be stopped,
    # or it runs on unrecorded, out of reach of the next retrain's stop.
    stages = {"stages": {"slow": {"cmd": "exec sleep 60", "outs": ["s.txt"]}}}
    (repo / dvc.PIPELINE_FILE).write_text(yaml.safe_dump(stages))
    leaders: list[int] = []

    def record_fails(path: Path, token: str, pid: int | None = None) -> None:
        if pid is not None:
            leaders.append(pid)
            raise OSError("No space left on device")

    monkeypatch.setattr(dvc, "record_group", record_fails)
    try:
        with pytest.raises(OSError, match="No space"):
            dvc.run(repo, "repro", "slow", record=tmp_path / "dvc-group.json")
        (leader,) = leaders
        assert not group_members(leader), "DVC's group outlived the failed record"
    finally:
        for pid in leaders:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
