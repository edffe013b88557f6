"""The session's expensive fixtures are built once for all of `make test`'s workers
(tests/conftest.py `build_once`): the workers are processes that meet on a file lock."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, build_once


def _slow_build(root: Path) -> None:
    with (root.parent / "builds.log").open("a") as log:
        log.write("built\n")
    time.sleep(0.5)  # long enough for the other process to arrive while this one builds
    (root / "repo").mkdir()


ASK = """
import os, sys, time
from pathlib import Path
from tests.conftest import build_once

root = Path(sys.argv[1])
(root.parent / f"arrived-{os.getpid()}").touch()

def build(root):
    with (root.parent / "builds.log").open("a") as log:
        log.write("built\\n")
    # Build only once the other process has arrived too (then it waits on the lock).
    deadline = time.monotonic() + 60
    while len(list(root.parent.glob("arrived-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    (root / "repo").mkdir()

built = build_once(root, build)
print(built if (built / "repo").is_dir() else "no repo")
"""


def test_two_processes_asking_at_once_share_one_build(tmp_path: Path) -> None:
    # Two interpreters, as the workers of `pytest -n 2` are.
    asks = [
        subprocess.Popen(
            [sys.executable, "-c", ASK, str(tmp_path / "trained")],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    said = [ask.communicate(timeout=120) for ask in asks]
    assert [ask.returncode for ask in asks] == [0, 0], said
    assert (tmp_path / "builds.log").read_text() == "built\n"
    assert {out.strip() for out, _ in said} == {str(tmp_path / "trained")}


def test_a_build_that_failed_is_redone_from_scratch_by_the_next_asker(tmp_path: Path) -> None:
    root = tmp_path / "trained"

    def broken(at: Path) -> None:
        (at / "half-written").write_text("x")
        raise RuntimeError("dvc repro failed")

    with pytest.raises(RuntimeError):
        build_once(root, broken)
    assert build_once(root, _slow_build) == root
    assert sorted(p.name for p in root.iterdir()) == ["done", "repo"]
    assert (tmp_path / "builds.log").read_text() == "built\n"
