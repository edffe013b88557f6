from __future__ import annotations

import shutil

import pytest

from retrain.config import ConfigError, apply_overrides
from tests.conftest import REPO


def test_override_keeps_comments_and_validates(tmp_path):
    target = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", target)
    before = target.read_text()
    params = apply_overrides(target, {"tune.n_trials": 3, "evaluate.lightgbm.n_trials": 2})
    after = target.read_text()
    assert params.tune.n_trials == 3 and params.evaluate.lightgbm.n_trials == 2
    assert "# The one configuration of the pipeline" in after
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    assert len(changed) == 2


@pytest.mark.parametrize(
    ("override", "message"),
    [({"tune.n_trail": 3}, "tune.n_trail: unknown key"), ({"tune.n_trials": -1}, "tune.n_trials")],
)
def test_bad_override_leaves_the_file_alone(tmp_path, override, message):
    target = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", target)
    before = target.read_bytes()
    with pytest.raises(ConfigError, match=message):
        apply_overrides(target, override)
    assert target.read_bytes() == before
