"""The session's expensive fixtures are built once for all of `make test`'s workers
(tests/conftest.py `build_once`): the workers are processes that meet on a file lock."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from tests.conftest import build_once


def _slow_build(root: Path) -> None:
    with (root.parent / "builds.log").open("a") as log:
        log.write("built\n")
    time.sleep(0.5)  # long enough for the other process to arrive while this one builds
    (root / "repo").mkdir()


def _ask(root: Path, out: Path) -> None:
    built = build_once(root, _slow_build)
    out.write_text(str(built) if (built / "repo").is_dir() else "no repo")


def test_two_processes_asking_at_once_share_one_build(tmp_path: Path) -> None:
    fork = multiprocessing.get_context("fork")  # the workers of `pytest -n 2` are processes
    asks = [
        fork.Process(target=_ask, args=(tmp_path / "trained", tmp_path / f"got{i}"))
        for i in range(2)
    ]
    for ask in asks:
        ask.start()
    for ask in asks:
        ask.join(30)
    assert [ask.exitcode for ask in asks] == [0, 0]
    assert (tmp_path / "builds.log").read_text() == "built\n"
    got = {(tmp_path / f"got{i}").read_text() for i in range(2)}
    assert got == {str(tmp_path / "trained")}


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
