"""Bench: our drift check (Evidently, params.yaml settings) vs plain scipy per-column tests.

Same reference and current tables (resampled Telco rows, seeded), at 100k and 1M rows:
scipy runs a two-sample KS test per numeric column and a chi-squared test per categorical
column; ours runs `retrain.monitoring.drift.compute_drift`. Prints seconds and the ratio
(goal: ours <= 3x scipy).

    .venv/bin/python bench/drift_speed.py [--rows 100000 1000000]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from retrain.config import load_params

REPO = Path(__file__).resolve().parents[1]
GOAL = 3.0


def tables(rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    base = pd.read_csv(REPO / "data" / "raw" / "telco_churn.csv")
    rng = np.random.default_rng(seed)
    ref = base.iloc[rng.integers(0, len(base), rows)].reset_index(drop=True)
    cur = base.iloc[rng.integers(0, len(base), rows)].reset_index(drop=True)
    cur["monthly_charges"] = cur["monthly_charges"] * 1.1  # one column really drifts
    return ref, cur


def plain_scipy(ref: pd.DataFrame, cur: pd.DataFrame, numeric, categorical) -> dict[str, float]:
    out = {}
    for col in numeric:
        out[col] = float(stats.ks_2samp(ref[col].dropna(), cur[col].dropna()).pvalue)
    for col in categorical:
        levels = sorted(set(ref[col].dropna()) | set(cur[col].dropna()))
        a = ref[col].value_counts().reindex(levels, fill_value=0).to_numpy()
        b = cur[col].value_counts().reindex(levels, fill_value=0).to_numpy()
        out[col] = float(stats.chi2_contingency(np.vstack([a, b]))[1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    from retrain.monitoring.drift import compute_drift

    params = load_params(REPO / "params.yaml")
    schema = params.dataset
    compute_drift(*tables(2000, 0), schema, params.drift)  # warm-up: imports and first calls
    for rows in args.rows:
        ref, cur = tables(rows, 1)
        t = time.perf_counter()
        plain_scipy(ref, cur, schema.numeric, schema.categorical)
        scipy_s = time.perf_counter() - t
        t = time.perf_counter()
        report = compute_drift(ref, cur, schema, params.drift)
        ours_s = time.perf_counter() - t
        ratio = ours_s / scipy_s
        print(
            f"{rows:>9,} rows x {len(schema.features)} cols: scipy {scipy_s:6.2f} s, "
            f"ours {ours_s:6.2f} s, ratio {ratio:5.2f}x  goal <= {GOAL}x "
            f"{'MET' if ratio <= GOAL else 'MISSED'}  (drifted: {report.drifted_features})",
            flush=True,
        )


if __name__ == "__main__":
    main()
