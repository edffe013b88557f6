"""What predict serves is the prod version's files, as its commit pinned them: from the DVC
cache, else the remote, checked by hash; never the workspace. A real git + DVC repository
with a local remote and GTO tags."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from retrain.config import Params, load_params_at
from retrain.infra.git import git, identity_env, publish
from retrain.registry import versions
from retrain.registry.serving import (
    ArtifactMissing,
    NoProdModel,
    lock_outputs,
    materialize,
    prod_model,
    rel,
)
from retrain.testing import pipeline_env
from tests.conftest import REPO

pytestmark = pytest.mark.slow  # real `dvc repro`/`dvc push` processes

MAKE = """\
import json, pathlib, sys
v = pathlib.Path("version.txt").read_text().strip()
onnx, pre, metrics = (pathlib.Path(p) for p in sys.argv[1:])
for path in (onnx, pre, metrics):
    path.parent.mkdir(parents=True, exist_ok=True)
onnx.write_text(f"onnx of version {v}")
pre.write_text(json.dumps({"version": v}))
metrics.write_text(json.dumps({"threshold": int(v) / 10}))
"""


def _dvc(root: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
        env=pipeline_env(),
    )


def _build(root: Path, params: Params, version: int, *, promote: bool) -> str:
    """Train version `version` (the stage writes its files), commit it, register it as
    v<version>.0.0, and with `promote` put it in the serving stage. Returns the commit."""
    (root / "version.txt").write_text(f"{version}\n")
    _dvc(root, "repro", "-q")
    env = identity_env(root)
    git(root, "add", "-A", env=env)
    git(root, "commit", "-qm", f"version {version}", env=env)
    commit = git(root, "rev-parse", "HEAD").strip()
    reg = params.registry
    tags = versions.version_tags(
        root,
        reg.model_name,
        reg.stage,
        commit,
        register=f"v{version}.0.0",
        promote=promote,
        note="test",
        env=env,
    )
    publish(root, tags)
    return commit


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, Params, Path]:
    root, remote = tmp_path / "repo", tmp_path / "remote"
    root.mkdir()
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    git(root, "init", "-q")
    _dvc(root, "init", "-q")
    _dvc(root, "remote", "add", "-d", "store", str(remote))
    params = load_params_at(root)
    onnx, pre, metrics = (
        rel(root, p)
        for p in (params.paths.onnx_model, params.paths.preprocessor, params.paths.metrics)
    )
    (root / "make.py").write_text(MAKE)
    stage = {
        "cmd": f"python make.py {onnx} {pre} {metrics}",
        "deps": ["make.py", "version.txt"],
        "outs": [onnx, pre],
        "metrics": [{metrics: {"cache": False}}],
    }
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"train": stage}}))
    (root / ".gitignore").write_text(f"/{rel(root, params.paths.serving_dir)}/\n")
    return root, params, remote


def test_nothing_in_prod_is_one_clear_error(repo):
    root, params, _ = repo
    _build(root, params, 1, promote=False)
    with pytest.raises(NoProdModel, match="run a retrain first"):
        prod_model(root, params)


def test_the_prod_version_is_served_not_the_workspace(repo):
    root, params, remote = repo
    _build(root, params, 1, promote=True)
    _build(root, params, 2, promote=False)  # a challenger that lost the gate
    assert params.paths.onnx_model.read_text() == "onnx of version 2"

    served = prod_model(root, params)
    assert served.label == f"{params.registry.model_name}@v1.0.0"
    assert served.onnx.read_text() == "onnx of version 1"
    assert json.loads(served.preprocessor.read_text()) == {"version": "1"}
    assert served.threshold == 0.1
    assert served.onnx.parent == params.paths.serving_dir / "v1.0.0"

    # A served copy that was changed on disk is replaced by the pinned bytes.
    served.onnx.write_text("tampered")
    assert prod_model(root, params).onnx.read_text() == "onnx of version 1"

    # Not in the DVC cache (another machine, a `dvc gc`): read from the remote.
    _dvc(root, "push", "-q", "--all-commits")
    shutil.rmtree(root / ".dvc" / "cache")
    shutil.rmtree(params.paths.serving_dir)
    assert prod_model(root, params).onnx.read_text() == "onnx of version 1"

    # In neither: one error naming the file and the commit.
    shutil.rmtree(root / ".dvc" / "cache", ignore_errors=True)
    shutil.rmtree(remote)
    shutil.rmtree(params.paths.serving_dir)
    with pytest.raises(ArtifactMissing, match="in neither the DVC cache nor the remote"):
        prod_model(root, params)


def test_only_pinned_outputs_can_be_materialized(repo, tmp_path):
    root, params, _ = repo
    commit = _build(root, params, 1, promote=False)
    with pytest.raises(ArtifactMissing, match="make.py is not an output in dvc.lock"):
        materialize(root, commit, ["make.py"], tmp_path / "out")
    lock = (root / "dvc.lock").read_text()
    outs = lock_outputs(lock)
    assert set(outs) == {
        rel(root, params.paths.onnx_model),
        rel(root, params.paths.preprocessor),
        rel(root, params.paths.metrics),
    }
    assert lock_outputs("") == {}


# --- a regression model is served with its prediction interval (issue 26) ---------------------

# A train stage of a tiny regression model (tests/task_models.py): version v's interval has
# half-width v, written when the stage is given its path.
MAKE_TINY = """\
import json, pathlib, shutil, sys
v = pathlib.Path("version.txt").read_text().strip()
onnx, pre, metrics = (pathlib.Path(p) for p in sys.argv[1:4])
for path in (onnx, pre, metrics):
    path.parent.mkdir(parents=True, exist_ok=True)
shutil.copy("tiny/model.onnx", onnx)
shutil.copy("tiny/preprocessor.json", pre)
metrics.write_text(json.dumps({"rmse": float(v)}))
if len(sys.argv) > 4:
    interval = {"level": 0.9, "half_width": float(v), "n_val": 40}
    pathlib.Path(sys.argv[4]).write_text(json.dumps(interval))
"""


def test_a_regression_version_is_served_with_its_pinned_intervals(tmp_path):
    """intervals.json is part of the served model: materialised with model.onnx, md5-checked
    against the version's dvc.lock; a regression version whose commit pins none is an error
    at load naming the file (and /ready's error, the service keeps what it had)."""
    from retrain.scoring import Interval
    from retrain.serve.model import Rollout
    from tests import task_models

    root = tmp_path / "repo"
    task_models.checkout(root, REPO / "params.yaml", "regression")
    _dvc(root, "init", "-q")
    params = load_params_at(root)
    paths = params.paths
    pinned = (paths.onnx_model, paths.preprocessor, paths.metrics, paths.intervals)
    onnx, pre, metrics, intervals = (rel(root, p) for p in pinned)
    task_models.write_model(root / "tiny", "regression")  # what "training" copies into place
    (root / "make.py").write_text(MAKE_TINY)
    stage: dict = {
        "cmd": f"python make.py {onnx} {pre} {metrics}",
        "deps": ["make.py", "version.txt", "tiny"],
        "outs": [onnx, pre],
        "metrics": [{metrics: {"cache": False}}],
    }
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"train": stage}}))
    (root / ".gitignore").write_text(f"/{rel(root, paths.serving_dir)}/\n")

    # Version 1's train wrote no interval: not servable as a regression model.
    _build(root, params, 1, promote=True)
    with pytest.raises(ArtifactMissing) as missing:
        prod_model(root, params)
    assert str(missing.value) == (
        f"regression-model@v1.0.0: no {intervals} in its commit's dvc.lock; a regression model "
        "is served with the prediction interval its train stage writes there (paths.intervals)"
    ).replace("regression-model", params.registry.model_name)
    rollout = Rollout(root, params)
    rollout.poll()
    assert rollout.state.prod is None and intervals in (rollout.state.error or "")

    # Version 2's train writes it: served with the model, as pinned.
    stage["cmd"] += f" {intervals}"
    stage["outs"].append(intervals)
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"train": stage}}))
    _build(root, params, 2, promote=True)
    served = prod_model(root, params)
    assert served.interval == Interval(level=0.9, half_width=2.0, n_val=40)
    assert served.threshold is None  # a binary model's notion
    assert served.intervals == paths.serving_dir / "v2.0.0" / "intervals.json"
    assert served.files == [served.onnx, served.preprocessor, served.intervals]
    served.intervals.write_text('{"level": 0.9, "half_width": 0.0, "n_val": 40}')  # tampered
    assert prod_model(root, params).interval == Interval(0.9, 2.0, 40)  # the pinned bytes
    rollout.poll()
    assert rollout.state.error is None and rollout.state.prod is not None
    assert rollout.state.prod.describe()["interval"] == {
        "level": 0.9,
        "half_width": 2.0,
        "n_val": 40,
    }

    # `retrain predict` scores with it: each row's value and its interval of half-width 2.
    from retrain.predicting import predict_file

    source = root / "data" / "predict" / "rows.csv"
    source.parent.mkdir(parents=True)
    task_models.table(5).to_csv(source, index=False)
    done = predict_file(root, params, source, "predictions/rows.csv")
    scored = pd.read_csv(done.output)
    assert done.rows == 5 and set(scored.registry_version) == {served.label}
    assert (scored.interval_upper - scored.prediction).to_numpy() == pytest.approx(np.full(5, 2.0))
    expected = task_models.expected("regression", served.preprocessor, task_models.table(5))
    assert scored.prediction.to_numpy() == pytest.approx(expected, abs=1e-4)
