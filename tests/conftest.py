"""Shared fixtures: the repository, the real pinned data, and one small CPU config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrain import testing
from retrain.config import Params

REPO = Path(__file__).resolve().parents[1]
RAW = REPO / "data" / "raw" / "telco_churn.csv"


def small_overrides(raw: dict[str, Any]) -> dict[str, Any]:
    """The default params with budgets cut so the whole pipeline runs in seconds."""
    return testing.small_overrides(raw)


@pytest.fixture(scope="session")
def default_params_raw() -> dict[str, Any]:
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.fixture(scope="session")
def small_params_raw(default_params_raw: dict[str, Any]) -> dict[str, Any]:
    return small_overrides(default_params_raw)


@pytest.fixture(scope="session")
def raw_csv() -> Path:
    if not RAW.exists():
        pytest.fail(f"{RAW} missing: run `retrain data fetch` (make test does) first")
    return RAW


def params_in(tmp: Path, raw: dict[str, Any]) -> Params:
    """`raw` params with every output path moved under `tmp` (inputs stay in the repo)."""
    return testing.params_in(tmp, raw, REPO)


def make_pipeline_repo(dest: Path, params: dict[str, Any], remote: Path) -> Path:
    """A fresh git repo holding this checkout's tracked files, the raw data and `params`."""
    return testing.make_pipeline_repo(dest, params, remote, REPO, RAW)


def pipeline_env() -> dict[str, str]:
    """DVC runs `python -m ...`: the project's interpreter must come first on PATH."""
    return testing.pipeline_env()


@pytest.fixture(scope="session")
def trained_repo(tmp_path_factory, small_params_raw, raw_csv) -> Path:
    """A pipeline repo on the small params after one plain `dvc repro` (read-only for tests:
    copy it with `copy_repo` before changing anything)."""
    root = tmp_path_factory.mktemp("trained")
    repo = make_pipeline_repo(root / "repo", small_params_raw, root / "remote")
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"],
        cwd=repo,
        env=pipeline_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Its output, beside the repo: test_pipeline checks what this one run ran.
    (root / FIRST_REPRO_LOG).write_text(proc.stdout)
    return repo


FIRST_REPRO_LOG = "first_repro.stdout"


def first_repro_output(trained: Path) -> str:
    """What the `dvc repro` that built `trained_repo` printed."""
    return (trained.parent / FIRST_REPRO_LOG).read_text()


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server and database for every test module that runs flows
    (each start costs tens of seconds on a loaded machine). It changes only this process's
    Prefect settings, never os.environ: subprocesses (the real stack) are not affected."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def record_workspace_as_prod(repo: Path) -> dict[str, Any]:
    """Record the repo's trained workspace as the first prod version (see retrain.testing)."""
    return testing.record_workspace_as_prod(repo)


def copy_repo(src: Path, dest: Path) -> Path:
    return testing.copy_repo(src, dest)
