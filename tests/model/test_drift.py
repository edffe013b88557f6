"""The drift gate against the trained model: calm batches pass, each injected drift trips it."""

from __future__ import annotations

import pandas as pd
import pytest

from retrain.config import load_params_at
from retrain.data.simulate import Drift, simulate
from retrain.ingest import check_batch
from retrain.monitoring.drift import batch_drift

pytestmark = [pytest.mark.model, pytest.mark.slow]


@pytest.fixture(scope="module")
def params(trained_repo):
    return load_params_at(trained_repo)


@pytest.fixture(scope="module")
def table(raw_csv):
    return pd.read_csv(raw_csv)


def test_calm_batch_does_not_trip(params, table):
    batch = simulate(table, params.dataset, n_batches=1, batch_size=600, seed=21)[0]
    summary = batch_drift(batch, params)
    assert summary["gate"] == {"tripped": False, "reasons": []}
    assert summary["features"]["monthly_charges"]["drifted"] is False
    assert summary["prediction"]["column"] == "model score"
    assert summary["target"]["drifted"] is False


def test_a_shifted_column_drifts(params, table):
    drift = Drift("shift", "monthly_charges", 25)
    batch = simulate(table, params.dataset, n_batches=1, batch_size=600, seed=21, drift=drift)[0]
    summary = batch_drift(batch, params)
    assert summary["features"]["monthly_charges"]["drifted"] is True


@pytest.mark.parametrize(
    ("drift", "expected"),
    [
        (Drift("mix", "contract", 0.9, "Month-to-month"), "contract"),
        (Drift("flip"), "target drift"),
    ],
)
def test_each_drift_kind_trips_the_gate(params, table, drift, expected):
    batch = simulate(table, params.dataset, n_batches=1, batch_size=600, seed=21, drift=drift)[0]
    summary = batch_drift(batch, params)
    assert summary["gate"]["tripped"] is True
    assert expected in " ".join(summary["gate"]["reasons"])


def test_new_payment_method_is_stopped_by_validation(params, table, tmp_path):
    drift = Drift("unseen", "payment_method", 0.3, "Digital wallet")
    batch = simulate(table, params.dataset, n_batches=1, batch_size=600, seed=21, drift=drift)[0]
    path = tmp_path / "b.csv"
    batch.to_csv(path, index=False)
    reason, _ = check_batch(path, params)
    assert reason is not None
    assert "column 'payment_method' failed expect_column_values_to_be_in_set" in reason
    assert "Digital wallet" in reason
