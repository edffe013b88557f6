"""Carve realistic, time-ordered batches out of the Telco table, with optional, named drift.

Customers arrive in a seeded random order; each batch gets fresh customer ids (a batch is
new customers, not copies of the training rows). Drift kinds change a batch the way the
business would: prices rise, the contract mix shifts, a payment method appears, churn rises.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ID_OFFSET = 1_000_000


def _price_rise(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    factor = 1.25
    return df.assign(
        monthly_charges=(df["monthly_charges"] * factor).round(2),
        total_charges=(df["total_charges"] * factor).round(2),
    )


def _contract_mix(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    # Mostly month-to-month customers: what a promotion of monthly plans would bring in.
    monthly = df[df["contract"] == "Month-to-month"]
    other = df[df["contract"] != "Month-to-month"]
    n_other = max(1, int(0.1 * len(df)))
    rows = pd.concat(
        [
            monthly.sample(len(df) - n_other, replace=True, random_state=rng.integers(2**31)),
            other.sample(n_other, random_state=rng.integers(2**31)),
        ]
    )
    return rows.sample(frac=1, random_state=rng.integers(2**31))


def _new_payment_method(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    out = df.copy()
    chosen = rng.random(len(out)) < 0.3
    out.loc[chosen, "payment_method"] = "Digital wallet"
    return out


def _label_shift(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    # A competitor's offer: a third of the staying customers leave.
    out = df.copy()
    stayed = out.index[out["churn"] == "No"]
    flip = rng.choice(stayed, size=len(stayed) // 3, replace=False)
    out.loc[flip, "churn"] = "Yes"
    return out


DRIFTS: dict[str, Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]] = {
    "price_rise": _price_rise,
    "contract_mix": _contract_mix,
    "new_payment_method": _new_payment_method,
    "label_shift": _label_shift,
}


def simulate(
    table: pd.DataFrame,
    *,
    n_batches: int,
    batch_size: int,
    seed: int,
    drift: str | None = None,
    id_column: str = "customer_id",
    first_batch: int = 1,
) -> list[pd.DataFrame]:
    """`n_batches` batches of `batch_size` rows, in arrival order; `drift` applies to each."""
    if drift is not None and drift not in DRIFTS:
        raise ValueError(f"unknown drift kind {drift!r}; known: {sorted(DRIFTS)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(table))
    batches = []
    for i in range(n_batches):
        rows = order[(i * batch_size) % len(table) :][:batch_size]
        if len(rows) < batch_size:
            rows = np.concatenate([rows, order[: batch_size - len(rows)]])
        batch = table.iloc[rows].reset_index(drop=True)
        if drift:
            batch = DRIFTS[drift](batch, rng).reset_index(drop=True)
        number = first_batch + i
        batch[id_column] = ID_OFFSET * number + np.arange(len(batch))
        batches.append(batch)
    return batches


def write_batches(
    batches: list[pd.DataFrame], out_dir: Path, prefix: str, first: int = 1
) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, batch in enumerate(batches):
        path = out_dir / f"{prefix}-{first + i:04d}.csv"
        batch.to_csv(path, index=False, lineterminator="\n")
        path.with_name(path.name + ".done").touch()  # landing protocol: the file is complete
        paths.append(path)
    return paths
