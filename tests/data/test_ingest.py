"""Every kind of bad batch is rejected with a clear message and kept, byte for byte."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain.data.arrivals import ARRIVALS
from retrain.data.simulate import simulate
from retrain.hashing import file_md5
from retrain.ingest import ingest_file
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


def test_good_batch_is_accepted_and_reingest_is_a_noop(params, batch):
    landed = land(params, "batch-0001.csv", csv(batch))
    original, md5 = landed.read_bytes(), file_md5(landed)
    first = ingest_file(landed, params, version=False)
    assert first.status == "accepted", first.reason
    stored = Path(first.destination)
    assert stored.parent == params.paths.batches and md5[:12] in stored.name
    assert stored.read_bytes() == original
    again = land(params, "batch-0001-resent.csv", lambda p: p.write_bytes(original))
    second = ingest_file(again, params, version=False)
    assert second.status == "duplicate" and str(stored) in second.reason
    assert sorted(params.paths.batches.iterdir()) == [params.paths.batches / ARRIVALS, stored]
    assert (params.paths.batches / ARRIVALS).read_text() == f"{stored.name}\n"  # once


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
