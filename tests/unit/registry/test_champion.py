"""The gate's holdout as `challenge` builds it (retrain.registry.champion), with tiny real ONNX
models of each task (tests/task_models.py): the test split's unseen rows plus the pinned
evaluation set, both counted, the set's version named in the result and its evidence line."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from retrain.config import load_params_at
from retrain.data.clean import clean
from retrain.registry import gate
from retrain.registry.champion import challenge
from tests import task_models
from tests.conftest import REPO


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_the_gate_scores_the_unseen_test_rows_plus_the_pinned_holdout(tmp_path, kind):
    root = task_models.checkout(tmp_path / "repo", REPO / "params.yaml", kind)
    params = load_params_at(root)
    paths, schema = params.paths, params.dataset
    onnx, pre = task_models.write_model(tmp_path / "model", kind)
    for src, dest in ((onnx, paths.onnx_model), (pre, paths.preprocessor)):
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    splits = {paths.train: (300, 1, 0), paths.val: (100, 2, 1000), paths.test: (200, 3, 2000)}
    for path, (n, seed, first) in splits.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        clean(task_models.labelled(kind, n, seed, first), schema, {})[0].to_parquet(
            path, index=False
        )
    test = pd.read_parquet(paths.test)
    # A test row the challenger trained on: left out, as before.
    pd.concat([pd.read_parquet(paths.train), test.iloc[:5]]).to_parquet(paths.train, index=False)

    without = challenge(root, params, None)
    assert without.holdout["rows"] == 195 and "pinned_rows" not in without.holdout

    paths.holdout.mkdir(parents=True)
    task_models.labelled(kind, 40, seed=4, first_id=9000).to_csv(
        paths.holdout / "b-1.csv", index=False
    )
    md5 = "e" * 32 + ".dir"
    paths.holdout_pin.write_text(f"outs:\n- md5: {md5}\n  path: data/holdout\n")
    result = challenge(root, params, None)
    assert result.holdout["test_rows"] == 200 and result.holdout["pinned_version"] == md5
    assert result.holdout["test_rows_unseen"] == 195 and result.holdout["pinned_rows"] == 40
    assert result.rows == result.holdout["rows"] == 235
    shown = gate.markdown(result, None, "v1")
    assert "n = 235" in shown and "195 unseen test rows + 40 pinned-holdout rows" in shown
    assert f"version {md5[:12]}" in shown
