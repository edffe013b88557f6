"""The pinned evaluation set (retrain.ingest.holdout) on small synthetic tables of each task:
a seeded, exact share of each labelled batch is held out, the same rows whatever the file's
name or row order, and the gate scores them beside the test split's unseen rows, so its
evidence grows with each batch even when the champion trained on most of the test split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.config import Params, load_params_at
from retrain.data.clean import TARGET, clean
from retrain.ingest.holdout import held_out, row_key, split_batch
from retrain.registry.champion import pinned_holdout, select_holdout
from tests import task_models
from tests.conftest import REPO

KINDS = ["binary", "multiclass", "regression"]


def toy_params(tmp_path, kind: str, share: float = 0.2, ids: bool = True) -> Params:
    root = task_models.checkout(tmp_path / "repo", REPO / "params.yaml", kind)
    params = load_params_at(root)
    dataset = params.dataset if ids else params.dataset.model_copy(update={"id_column": None})
    ingest = params.ingest.model_copy(update={"holdout_share": share})
    return params.model_copy(update={"dataset": dataset, "ingest": ingest})


def test_the_draw_is_exact_keeps_a_row_to_train_and_skips_unlabelled_rows():
    keys = [row_key(42, [f"r{i}"]) for i in range(300)]
    assert len(held_out(keys, 0.2)) == 60  # round(0.2 x 300), not a coin per row
    assert held_out(keys, 0.0) == []
    assert len(held_out(keys[:1], 0.9)) == 0  # a one-row batch trains
    assert len(held_out(keys[:5], 0.9)) == 4
    unlabelled = [None if i % 2 else k for i, k in enumerate(keys)]
    picked = held_out(unlabelled, 0.2)
    assert len(picked) == 30 and all(i % 2 == 0 for i in picked)
    # The seed draws the rows: another seed, other rows.
    other = held_out([row_key(7, [f"r{i}"]) for i in range(300)], 0.2)
    assert other != held_out(keys, 0.2)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_seeded_share_is_held_out_the_same_rows_under_any_name_or_order(tmp_path, kind, suffix):
    params = toy_params(tmp_path, kind)
    batch = task_models.labelled(kind, 101, seed=1)
    first, again = tmp_path / f"batch{suffix}", tmp_path / f"renamed{suffix}"
    shuffled = batch.sample(frac=1, random_state=3)
    for df, path in ((batch, first), (shuffled, again)):
        df.to_csv(path, index=False) if suffix == ".csv" else df.to_parquet(path, index=False)
    read = pd.read_csv if suffix == ".csv" else pd.read_parquet

    split = split_batch(first, params, tmp_path / "a")
    assert split is not None
    train, held = read(split.train), read(split.holdout)
    assert split.holdout_rows == len(held) == round(0.2 * 101) == 20
    assert split.train_rows == len(train) == 81
    assert list(train.columns) == list(held.columns) == list(batch.columns)
    both = pd.concat([train, held]).set_index("row_id").sort_index()
    pd.testing.assert_frame_equal(both, batch.set_index("row_id").sort_index())  # as landed

    resplit = split_batch(again, params, tmp_path / "b")
    assert resplit is not None
    assert set(read(resplit.holdout).row_id) == set(held.row_id)


@pytest.mark.parametrize("kind", KINDS)
def test_without_an_id_column_the_feature_values_draw_the_rows(tmp_path, kind):
    params = toy_params(tmp_path, kind, ids=False)
    batch = task_models.labelled(kind, 50, seed=2)
    batch.to_csv(tmp_path / "a.csv", index=False)
    # Other ids, same features and labels: the same rows are held out.
    batch.assign(row_id=[f"x{i}" for i in range(50)]).iloc[::-1].to_csv(
        tmp_path / "b.csv", index=False
    )
    a = split_batch(tmp_path / "a.csv", params, tmp_path / "sa")
    b = split_batch(tmp_path / "b.csv", params, tmp_path / "sb")
    assert a is not None and b is not None and a.holdout_rows == 10
    held_a = pd.read_csv(a.holdout).drop(columns="row_id").sort_values("x1")
    held_b = pd.read_csv(b.holdout).drop(columns="row_id").sort_values("x1")
    pd.testing.assert_frame_equal(held_a.reset_index(drop=True), held_b.reset_index(drop=True))


def test_nothing_is_held_out_with_share_0_or_without_labels(tmp_path):
    params = toy_params(tmp_path, "binary", share=0.0)
    batch = task_models.labelled("binary", 40, seed=3)
    batch.to_csv(tmp_path / "a.csv", index=False)
    assert split_batch(tmp_path / "a.csv", params, tmp_path / "s") is None
    params = toy_params(tmp_path / "on", "binary")
    batch.assign(y=np.nan).to_csv(tmp_path / "b.csv", index=False)
    assert split_batch(tmp_path / "b.csv", params, tmp_path / "s") is None
    batch.drop(columns="y").to_csv(tmp_path / "c.csv", index=False)
    assert split_batch(tmp_path / "c.csv", params, tmp_path / "s") is None


@pytest.mark.parametrize("kind", KINDS)
def test_the_gates_evidence_grows_with_each_batch_though_the_champion_saw_the_test_split(
    tmp_path, kind
):
    """Issue 27: a drift retrain was judged on 380 test rows, the champion having trained on
    the rest of the split. With the pinned holdout, every batch adds rows no model saw."""
    params = toy_params(tmp_path, kind)
    schema = params.dataset
    test, _ = clean(task_models.labelled(kind, 200, seed=4, first_id=10_000), schema, {})
    # The champion trained on 180 of today's 200 test rows (the split was redrawn since).
    champion_seen = [test.iloc[:180]]
    own = [clean(task_models.labelled(kind, 300, seed=5, first_id=20_000), schema, {})[0]]
    rows, pinned = [], 0
    params.paths.holdout.mkdir(parents=True)
    for i in range(3):  # three accepted batches, each split by ingest's function
        landed = tmp_path / f"batch{i}.csv"
        task_models.labelled(kind, 100, seed=10 + i, first_id=1000 * (i + 1)).to_csv(
            landed, index=False
        )
        split = split_batch(landed, params, tmp_path / f"split{i}")
        assert split is not None
        split.holdout.rename(params.paths.holdout / landed.name)
        pinned += split.holdout_rows
        frame = pinned_holdout(params)
        assert len(frame) == pinned and list(frame.columns) == list(test.columns)
        if kind != "regression":  # the task's encoding, as prepare encodes it
            assert frame[TARGET].isin(range(len(task_models.CLASSES))).all()
        candidates = pd.concat([test, frame], ignore_index=True)
        chosen, about = select_holdout(candidates, len(test), schema, [*own, *champion_seen], 1)
        assert about["test_rows_unseen"] == 20 and about["pinned_rows"] == pinned
        assert about["rows"] == len(chosen) >= pinned
        rows.append(about["rows"])
    assert rows == sorted(rows) and rows[-1] == 20 + 60  # grows, never shrinks


def test_a_copy_of_a_training_row_in_the_pinned_holdout_is_left_out(tmp_path):
    params = toy_params(tmp_path, "binary")
    schema = params.dataset
    test, _ = clean(task_models.labelled("binary", 50, seed=6, first_id=5000), schema, {})
    train, _ = clean(task_models.labelled("binary", 50, seed=7, first_id=6000), schema, {})
    copy = train.iloc[:3].assign(row_id=["c0", "c1", "c2"])  # a re-export under new ids
    pinned = pd.concat([clean(task_models.labelled("binary", 10, seed=8), schema, {})[0], copy])
    candidates = pd.concat([test, pinned], ignore_index=True)
    _, about = select_holdout(candidates, len(test), schema, [train], 1)
    assert about["pinned_rows"] == 10 and about["excluded_seen_by_features"] == 3
