from __future__ import annotations

import pandas as pd
import pytest

from retrain.data.simulate import DRIFTS, ID_OFFSET, simulate


@pytest.fixture(scope="module")
def table(raw_csv) -> pd.DataFrame:
    return pd.read_csv(raw_csv)


def test_batches_are_seeded_sized_and_carry_fresh_ids(table):
    a = simulate(table, n_batches=3, batch_size=200, seed=5)
    b = simulate(table, n_batches=3, batch_size=200, seed=5)
    assert all(x.equals(y) for x, y in zip(a, b, strict=True))
    assert [len(x) for x in a] == [200, 200, 200]
    ids = pd.concat(a)["customer_id"]
    assert ids.is_unique and ids.min() >= ID_OFFSET
    assert not set(ids) & set(table["customer_id"])
    assert not a[0]["monthly_charges"].equals(a[1]["monthly_charges"])  # different customers


def test_each_drift_kind_changes_what_it_names(table):
    calm = simulate(table, n_batches=1, batch_size=1000, seed=3)[0]
    drifted = {
        k: simulate(table, n_batches=1, batch_size=1000, seed=3, drift=k)[0] for k in DRIFTS
    }
    assert drifted["price_rise"]["monthly_charges"].mean() > 1.2 * calm["monthly_charges"].mean()
    monthly = (drifted["contract_mix"]["contract"] == "Month-to-month").mean()
    assert monthly > 0.85 > (calm["contract"] == "Month-to-month").mean()
    assert (drifted["new_payment_method"]["payment_method"] == "Digital wallet").mean() > 0.2
    assert (drifted["label_shift"]["churn"] == "Yes").mean() > (
        calm["churn"] == "Yes"
    ).mean() + 0.15


def test_unknown_drift_kind(table):
    with pytest.raises(ValueError, match="unknown drift kind 'nope'"):
        simulate(table, n_batches=1, batch_size=10, seed=0, drift="nope")


def test_cli_first_batch_continues_ids_and_file_numbers(tmp_path, raw_csv):
    from typer.testing import CliRunner

    from retrain.cli import app
    from tests.conftest import REPO

    runner = CliRunner()
    base = [
        "simulate",
        "--out",
        str(tmp_path),
        "--size",
        "50",
        "--params",
        str(REPO / "params.yaml"),
    ]
    first = runner.invoke(app, [*base, "--batches", "2"])
    later = runner.invoke(app, [*base, "--batches", "2", "--first-batch", "3"])
    assert first.exit_code == 0 and later.exit_code == 0, first.output + later.output
    files = sorted(p.name for p in tmp_path.glob("*.csv"))
    assert files == [f"batch-000{i}.csv" for i in (1, 2, 3, 4)]
    # The landing protocol: each complete file gets its NAME.done marker.
    assert sorted(p.name for p in tmp_path.glob("*.done")) == [f"{f}.done" for f in files]
    ids = pd.concat(pd.read_csv(p) for p in sorted(tmp_path.glob("*.csv")))["customer_id"]
    assert ids.is_unique  # a second call no longer repeats the first call's customers
