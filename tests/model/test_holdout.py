"""The gate's holdout on a real trained repo: copies of training rows under fresh ids (what
the old simulator produced) are left out, so they cannot flatter the challenger."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.config import load_params_at
from retrain.registry.champion import challenge
from tests.conftest import copy_repo

pytestmark = [pytest.mark.model, pytest.mark.slow]


def test_copied_training_rows_do_not_enter_the_holdout(trained_repo, tmp_path):
    repo = copy_repo(trained_repo, tmp_path / "repo")
    params = load_params_at(repo)
    clean = challenge(repo, params, None)
    train, test = pd.read_parquet(params.paths.train), pd.read_parquet(params.paths.test)
    copies = train.sample(300, random_state=0).copy()
    if params.dataset.id_column:
        copies[params.dataset.id_column] = np.arange(10**8, 10**8 + len(copies))
    pd.concat([test, copies], ignore_index=True).to_parquet(params.paths.test, index=False)

    leaky = challenge(repo, params, None)
    assert leaky.holdout["test_rows"] == len(test) + 300
    assert leaky.holdout["rows"] == clean.holdout["rows"]
    assert leaky.holdout["excluded_seen_by_features"] >= 300
    assert leaky.challenger == pytest.approx(clean.challenger)
