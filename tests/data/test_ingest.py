"""Every kind of bad batch is rejected with a clear message and kept, byte for byte."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain.config import IngestParams
from retrain.data.arrivals import ARRIVALS
from retrain.data.simulate import simulate
from retrain.hashing import file_md5
from retrain.ingest import ingest_file
from retrain.ingest.holdout import landed_rows, split_batch
from tests.conftest import REPO, telco_params_at

pytestmark = pytest.mark.data


@pytest.fixture()
def params(tmp_path):
    # The repo's params with every output path under tmp_path: the real data/ is not touched.
    p = telco_params_at(REPO)
    paths = p.paths.model_copy(
        update={
            "landing": tmp_path / "landing",
            "batches": tmp_path / "raw" / "batches",
            "quarantine": tmp_path / "quarantine",
            "holdout": tmp_path / "holdout",
            "holdout_pin": tmp_path / "holdout.dvc",
        }
    )
    (tmp_path / "landing").mkdir()
    return p.model_copy(update={"paths": paths})


@pytest.fixture(scope="module")
def batch(raw_csv, default_params_raw) -> pd.DataFrame:
    from retrain.config import DatasetSchema

    schema = DatasetSchema(**default_params_raw["dataset"])
    return simulate(pd.read_csv(raw_csv), schema, n_batches=1, batch_size=300, seed=9)[0]


def land(params, name: str, write: Callable[[Path], None]) -> Path:
    path = params.paths.landing / name
    write(path)
    return path


def csv(df: pd.DataFrame) -> Callable[[Path], None]:
    return lambda p: df.to_csv(p, index=False)


def with_value(df: pd.DataFrame, column: str, value, rows=(3,)) -> pd.DataFrame:
    out = df.copy().astype({column: object}) if isinstance(value, str) else df.copy()
    out.loc[list(rows), column] = value
    return out


BAD = {
    "missing_column": (lambda b: csv(b.drop(columns=["tenure"])), "missing ['tenure']"),
    "extra_column": (lambda b: csv(b.assign(coupon="X")), "unexpected ['coupon']"),
    "wrong_type": (
        lambda b: csv(with_value(b, "monthly_charges", "abc")),
        "column 'monthly_charges' failed expect_column_values_to_be_in_type_list",
    ),
    "empty_file": (lambda b: lambda p: p.write_bytes(b""), "file is empty"),
    "unreadable_file": (
        lambda b: lambda p: p.write_bytes(b"PAR1\x00\x13garbage"),
        "unreadable parquet file",
    ),
    "all_null_column": (
        lambda b: csv(b.assign(tech_support=np.nan)),
        "column 'tech_support' failed expect_column_values_to_not_be_null",
    ),
    "unseen_category": (
        lambda b: csv(with_value(b, "contract", "Three year")),
        "column 'contract' failed expect_column_values_to_be_in_set",
    ),
    "nan_in_numeric": (
        lambda b: csv(with_value(b, "tenure", np.nan)),
        "column 'tenure' failed expect_column_values_to_not_be_null",
    ),
    "inf_in_numeric": (
        lambda b: csv(with_value(b, "monthly_charges", np.inf)),
        "column 'monthly_charges' failed expect_column_values_to_be_between",
    ),
    "duplicated_ids": (
        lambda b: csv(pd.concat([b, b.head(2)])),
        "column 'customer_id' failed expect_column_values_to_be_unique",
    ),
    "target_missing": (lambda b: csv(b.drop(columns=["churn"])), "missing ['churn']"),
    "target_not_binary": (
        lambda b: csv(with_value(b, "churn", "Maybe")),
        "column 'churn' failed expect_column_values_to_be_in_set",
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_batch_is_rejected_and_kept_byte_identical(params, batch, kind):
    make, message = BAD[kind]
    suffix = ".parquet" if kind == "unreadable_file" else ".csv"
    landed = land(params, f"{kind}{suffix}", make(batch))
    original = landed.read_bytes()
    result = ingest_file(landed, params, version=False)
    assert result.status == "rejected"
    assert message in result.reason
    assert "\n" not in result.reason and f"{kind}{suffix}" in result.reason
    kept = Path(result.destination)
    assert kept.read_bytes() == original
    assert not landed.exists()
    assert (kept.parent / "reason.txt").read_text().strip() == result.reason
    report = json.loads((kept.parent / "report.json").read_text())
    assert report["success"] is False
    assert not params.paths.batches.exists() or not any(params.paths.batches.iterdir())


@pytest.mark.parametrize("share", [0.0, 0.2])
def test_good_batch_is_accepted_and_reingest_is_a_noop(params, batch, share, tmp_path):
    params = params.model_copy(update={"ingest": IngestParams(holdout_share=share)})
    landed = land(params, "batch-0001.csv", csv(batch))
    original, md5 = landed.read_bytes(), file_md5(landed)
    first = ingest_file(landed, params, version=False)
    assert first.status == "accepted", first.reason
    stored = Path(first.destination)
    assert stored.parent == params.paths.batches and md5[:12] in stored.name
    if share == 0:  # off: every row trains, the bytes as landed (today's behaviour exactly)
        assert stored.read_bytes() == original
        assert first.holdout is None and not params.paths.holdout.exists()
    else:
        # Issue 27: a seeded share of the labelled batch goes to the pinned evaluation set.
        held = Path(first.holdout)
        assert held == params.paths.holdout / stored.name
        lines = original.splitlines(keepends=True)
        kept, out = stored.read_bytes().splitlines(True), held.read_bytes().splitlines(True)
        assert kept[0] == out[0] == lines[0]  # the header, then every row once, as landed
        assert sorted(kept[1:] + out[1:]) == sorted(lines[1:])
        assert abs(first.holdout_rows - round(share * len(batch))) <= 1
        assert first.holdout_rows == len(out) - 1
        assert first.rows == len(batch) == len(kept) - 1 + first.holdout_rows  # nothing lost
        assert f"{len(kept) - 1} rows to train on, {len(out) - 1} to the holdout" in first.reason
        # Checks of the batch's labels (the monitor flow's canary) read every landed row.
        ids = params.dataset.id_column
        landed_back = landed_rows(stored, held).sort_values(ids).reset_index(drop=True)
        pd.testing.assert_frame_equal(landed_back, batch.sort_values(ids).reset_index(drop=True))
        # The same rows in another order under another name (another project: their ids
        # are pinned here) are split alike.
        other = tmp_path / "other" / "renamed.csv"
        other.parent.mkdir()
        batch.sample(frac=1, random_state=5).to_csv(other, index=False)
        again_split = split_batch(other, params, tmp_path / "split")
        assert again_split is not None
        assert set(pd.read_csv(again_split.holdout)[ids]) == set(pd.read_csv(held)[ids])
    again = land(params, "batch-0001-resent.csv", lambda p: p.write_bytes(original))
    second = ingest_file(again, params, version=False)
    assert second.status == "duplicate" and str(stored) in second.reason
    assert sorted(params.paths.batches.iterdir()) == [params.paths.batches / ARRIVALS, stored]
    assert (params.paths.batches / ARRIVALS).read_text() == f"{stored.name}\n"  # once
    if share:
        assert sorted(params.paths.holdout.iterdir()) == [Path(first.holdout)]


def test_a_later_batch_may_not_reuse_a_held_out_id(params, batch):
    # The held-out rows are pinned data too: a batch bringing one of their ids back (which
    # would put the same customer in training and in the gate's holdout) is refused.
    first = ingest_file(land(params, "a.csv", csv(batch)), params, version=False)
    assert first.status == "accepted" and first.holdout_rows
    ids = params.dataset.id_column
    held_id = pd.read_csv(first.holdout)[ids].iloc[0]
    later = batch.head(5).assign(**{ids: [held_id, *range(9_000_001, 9_000_005)]})
    second = ingest_file(land(params, "b.csv", csv(later)), params, version=False)
    assert second.status == "rejected", second.reason
    assert f"column '{ids}': 1 id(s) already in the pinned data ({held_id})" in second.reason


def test_the_drift_stage_judges_the_batch_accepted_last_not_the_last_name(params, raw_csv):
    # The drift stage took the stored name that sorts last as the newest batch: `zeta.csv`
    # accepted before `alpha.csv` made it judge zeta, while the monitor had just judged alpha.
    from retrain.stages.drift import newest_ingested

    table = pd.read_csv(raw_csv)
    first, second, late = simulate(table, params.dataset, n_batches=3, batch_size=60, seed=11)
    done = []
    for name, df in (("zeta.csv", first), ("alpha.csv", second)):
        result = ingest_file(land(params, name, csv(df)), params, version=False)
        assert result.status == "accepted", result.reason
        done.append(Path(result.destination))
    assert sorted(p.name for p in done) == [done[1].name, done[0].name]  # names: reversed
    assert newest_ingested(params) == done[1]
    # A duplicate of the first, and a rejected batch, arrive after it: neither is a new batch.
    again = ingest_file(land(params, "zz-again.csv", csv(first)), params, version=False)
    bad = late.drop(columns=["tenure"])
    rejected = ingest_file(land(params, "zz-bad.csv", csv(bad)), params, version=False)
    assert (again.status, rejected.status) == ("duplicate", "rejected")
    assert newest_ingested(params) == done[1]
