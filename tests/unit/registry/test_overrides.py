from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys

import pytest

from retrain.config import ConfigError, apply_overrides
from tests.conftest import REPO


def test_override_keeps_comments_and_validates(tmp_path):
    target = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", target)
    before = target.read_text()
    overrides = {"tune.n_trials": 3, "evaluate.lightgbm.n_trials": 2, "train.bag_folds": 5}
    params = apply_overrides(target, overrides | {"train.workers": 2})
    after = target.read_text()
    assert params.tune.n_trials == 3 and params.evaluate.lightgbm.n_trials == 2
    assert params.train.bag_folds == 5  # a run may bag fold models (bench 7e)
    assert params.train.workers == 2  # and fit them two at a time
    assert "# The one configuration of the pipeline" in after
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    assert len(changed) == 4


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"evaluate.n_binz": 3}, "evaluate.n_binz: unknown key"),
        ({"tune.n_trail": 3}, "'tune.n_trail' is not a tunable key"),
        ({"tune.n_trials": -1}, "tune.n_trials"),
    ],
)
def test_bad_override_leaves_the_file_alone(tmp_path, override, message):
    target = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", target)
    before = target.read_bytes()
    with pytest.raises(ConfigError, match=message):
        apply_overrides(target, override)
    assert target.read_bytes() == before


@pytest.mark.parametrize(
    "key", ["paths.raw_data", "dataset.target", "tune.storage", "registry.lock_timeout_s"]
)
def test_only_tunable_keys_can_be_overridden(tmp_path, key):
    from retrain.config import check_overrides

    target = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", target)
    before = target.read_bytes()
    with pytest.raises(ConfigError, match=rf"overrides: '{key}' is not a tunable key") as err:
        apply_overrides(target, {key: "/etc"})
    assert "\n" not in str(err.value) and "tune.n_trials" in str(err.value)
    assert target.read_bytes() == before
    check_overrides({"tune.n_trials": 2, "report.top_features": 5, "model.lr": 0.01})


KILLED_WITH_OVERRIDES = """
import os, signal, sys
from pathlib import Path
from retrain.registry.overrides import applied
with applied(Path(sys.argv[1]), Path(sys.argv[2]), "run-a", {"tune.n_trials": 2}):
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_overrides_of_a_killed_run_are_undone_by_the_next(tmp_path):
    from retrain.registry.overrides import recover, stash_file

    params = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params)
    committed = params.read_text()
    lock = tmp_path / ".dvc" / "tmp" / "retrain.lock"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WITH_OVERRIDES, str(params), str(lock)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "n_trials: 2" in params.read_text() and stash_file(lock).exists()
    said: list[str] = []
    assert recover(params, lock, said.append)
    assert params.read_text() == committed and not stash_file(lock).exists()
    (line,) = said
    assert "restored params.yaml: run run-a" in line and "{'tune.n_trials': 2}" in line
    assert not recover(params, lock, said.append) and len(said) == 1  # nothing left to undo


def test_a_finished_or_failed_run_puts_params_back(tmp_path):
    from retrain.registry.overrides import applied, stash_file

    params = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params)
    committed = params.read_text()
    lock = tmp_path / "retrain.lock"
    with pytest.raises(RuntimeError):
        with applied(params, lock, "run-a", {"train.max_epochs": 3}) as before:
            assert before == committed and "max_epochs: 3" in params.read_text()
            raise RuntimeError("stage failed")
    assert params.read_text() == committed and not stash_file(lock).exists()


@pytest.mark.parametrize(
    "key",
    [
        "registry.gate.margin",
        "registry.gate.tolerance",
        "registry.gate.min_rows",
        "report.min_slice_rows",
    ],
)
def test_a_run_cannot_lower_the_gate(tmp_path, key):
    # Issue 25.7: overrides {"registry.gate.margin": -1} promoted a model 0.006 worse. The
    # gate's rules change only by a committed params.yaml: the run's override path refuses
    # them before writing anything, in one line naming the key.
    from retrain.registry.overrides import applied, stash_file

    params = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params)
    before = params.read_bytes()
    lock = tmp_path / ".dvc" / "tmp" / "retrain.lock"
    with (
        pytest.raises(
            ConfigError, match=rf"overrides: '{key}' is a rule of the promotion gate"
        ) as err,
        applied(params, lock, "run-a", {"tune.n_trials": 2, key: -1}),
    ):
        pytest.fail("the block ran with a gate override")
    assert "\n" not in str(err.value) and "committed params.yaml" in str(err.value)
    assert params.read_bytes() == before and not stash_file(lock).exists()


def test_the_retrain_flow_tunes_with_its_own_overrides_under_the_runs(default_params_raw):
    """registry.retrain_overrides are every retrain run's overrides (what the flow applies,
    records and replays); a key the run's own overrides set wins; the gate's rules refused."""
    from retrain.config import parse_params
    from retrain.registry.overrides import with_retrain_overrides

    raw = json.loads(json.dumps(default_params_raw))
    raw["registry"]["retrain_overrides"] = {"tune.n_trials": 12, "tune.workers": 2}
    params = parse_params(raw)
    assert with_retrain_overrides(params, None) == {"tune.n_trials": 12, "tune.workers": 2}
    assert with_retrain_overrides(params, {"tune.n_trials": 0, "model.lr": 0.01}) == {
        "tune.n_trials": 0,
        "tune.workers": 2,
        "model.lr": 0.01,
    }
    raw["registry"]["retrain_overrides"] = {}
    assert with_retrain_overrides(parse_params(raw), None) is None
    raw["registry"]["retrain_overrides"] = {"registry.gate.margin": -1}
    with pytest.raises(ConfigError, match="registry.retrain_overrides.*rule of the promotion"):
        parse_params(raw)
    # The shipped params.yaml: the retrain flow tunes, `dvc repro` does not.
    shipped = parse_params(default_params_raw)
    assert shipped.tune.n_trials == 0
    assert shipped.registry.retrain_overrides["tune.n_trials"] > 0
