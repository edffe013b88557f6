"""Bench 2, validation: our `validate_frame` vs the same checks in plain pandas.

Realistic rows: the real table resampled with a seed, numbers jittered, fresh customer ids
(`bench.common.synthetic_telco`). Three ways to check them against expectations/telco_churn.json:
  plain pandas       each expectation as a vectorised pandas expression, success only
  ours               `validate_frame`: the pandas precheck proves what passes, Great
                     Expectations computes the detail of what fails
  GE only            `validate_frame(precheck=False)`: every expectation through GE (what
                     the code did before the precheck, and what Data Docs still need)
on a passing batch and on a failing one (two expectations fail). Goal: ours <= 3x plain
pandas on the passing path.

    .venv/bin/python -m bench.validation [--quick]
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common import (
    REPO,
    Goal,
    Section,
    Shared,
    cli,
    fmt_ratio,
    fmt_s,
    pipeline_params,
    synthetic_telco,
)

SUITE = REPO / "expectations" / "telco_churn.json"
SIZES, SIZES_QUICK = (100_000, 1_000_000), (10_000, 50_000)
GOAL = 3.0
SEED = 7


def _column(df: pd.DataFrame, kw: dict[str, Any]) -> pd.Series:
    col = df[kw["column"]]
    return col[df.eval(kw["row_condition"])] if kw.get("row_condition") else col


def pandas_checks(df: pd.DataFrame, expectations: list[dict[str, Any]]) -> list[bool]:
    """The suite's checks written directly in pandas: one success flag per expectation."""
    out = []
    for e in expectations:
        kind, kw = e["type"], e["kwargs"]
        if kind == "expect_table_columns_to_match_set":
            ok = set(df.columns) == set(kw["column_set"])
        elif kind == "expect_table_row_count_to_be_between":
            ok = len(df) >= kw["min_value"]
        elif kind == "expect_column_values_to_not_be_null":
            col = _column(df, kw)
            ok = 1 - col.isna().mean() >= kw.get("mostly", 1.0)
        elif kind == "expect_column_values_to_be_unique":
            ok = not df[kw["column"]].dropna().duplicated().any()
        elif kind == "expect_column_values_to_be_in_set":
            ok = bool(df[kw["column"]].dropna().isin(kw["value_set"]).all())
        elif kind == "expect_column_values_to_be_in_type_list":
            ok = df[kw["column"]].dtype.name in kw["type_list"]
        elif kind == "expect_column_values_to_be_between":
            col = df[kw["column"]].dropna()
            ok = bool(col.between(kw["min_value"], kw["max_value"]).all())
        elif kind == "expect_column_mean_to_be_between":
            ok = kw["min_value"] <= df[kw["column"]].mean() <= kw["max_value"]
        else:
            raise ValueError(f"bench has no pandas version of {kind}")
        out.append(bool(ok))
    return out


def _broken(df: pd.DataFrame) -> pd.DataFrame:
    """Two blocking failures: an unknown payment method, a blank total for a billed customer."""
    out = df.copy()
    out.loc[[1, 2], "payment_method"] = "Crypto"
    billed = np.flatnonzero(out["tenure"].to_numpy() > 0)[0]
    out.loc[billed, "total_charges"] = np.nan
    return out


def _best(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def run(quick: bool, shared: Shared) -> Section:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from retrain.config import parse_params
    from retrain.validation.suite import validate_frame

    schema = parse_params(pipeline_params()).dataset  # the Telco schema, as SUITE
    sizes = SIZES_QUICK if quick else SIZES
    expectations = json.loads(SUITE.read_text())["expectations"]
    section = Section(
        "2",
        "Validation: validate_frame vs the same checks in plain pandas",
        [
            "rows",
            "batch",
            "plain pandas",
            "ours",
            "**ours/pandas**",
            "GE only",
            "GE only/pandas",
            "failed (detail by GE)",
        ],
    )
    start = time.perf_counter()
    import great_expectations  # noqa: F401  (import time is bench 4's, not this one's)

    import_s = time.perf_counter() - start
    for n in sizes:
        passing = synthetic_telco(n, SEED)
        batches = {"passing": passing, "failing (2 blocking)": _broken(passing)}
        repeats = 3 if n <= 100_000 else 2
        for name, df in batches.items():
            t_pd, flags = _best(lambda df=df: pandas_checks(df, expectations), repeats)
            t_ours, ours = _best(
                lambda df=df: validate_frame(df, SUITE, "synthetic.csv", schema=schema), repeats
            )
            t_ge, full = _best(
                lambda df=df: validate_frame(
                    df, SUITE, "synthetic.csv", schema=schema, precheck=False
                ),
                1,
            )
            if ours.to_dict() != full.to_dict():
                raise AssertionError(f"precheck changed the result on the {name} batch")
            if ours.success != all(flags):
                raise AssertionError(f"plain pandas and validate_frame disagree on {name}")
            ratio = t_ours / t_pd
            section.rows.append(
                [
                    f"{n:,}",
                    name,
                    fmt_s(t_pd),
                    fmt_s(t_ours),
                    f"**{fmt_ratio(ratio)}**",
                    fmt_s(t_ge),
                    fmt_ratio(t_ge / t_pd),
                    f"{len(ours.failures)} of {len(expectations)}",
                ]
            )
            section.data[f"{n}/{name}"] = {"pandas_s": t_pd, "ours_s": t_ours, "ge_only_s": t_ge}
            if name == "passing":
                section.goals.append(
                    Goal(
                        f"{n:,} rows, passing batch",
                        fmt_ratio(ratio),
                        f"<= {GOAL:.0f}x",
                        ratio <= GOAL,
                    )
                )
    docs_n = sizes[0]
    with_docs = synthetic_telco(docs_n, SEED)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        t_docs, _ = _best(
            lambda: validate_frame(
                with_docs, SUITE, "s.csv", schema=schema, data_docs_dir=Path(tmp)
            ),
            1,
        )
    section.data["data_docs_s"] = t_docs
    section.notes += [
        f"{len(expectations)} expectations; ours runs only the expectations the pandas precheck "
        "cannot prove through GE, so a passing batch never builds a GE context (GE's import, "
        f"{import_s:.1f} s in this process, is paid only when something fails); results of ours "
        "and GE only were checked equal on every batch",
        f"the validate stage builds Data Docs for its last file, which need every "
        f"expectation's result, so that file runs the whole suite through GE: "
        f"{fmt_s(t_docs)} at {docs_n:,} rows (not a goal; Data Docs are a report for people)",
        "times are the best of 3 (2 at 1M rows) for pandas and ours, one run for GE only",
    ]
    return section


def main() -> None:
    cli(run, __doc__)


if __name__ == "__main__":
    main()
