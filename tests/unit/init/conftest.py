"""The two public tables `retrain init` is pinned against. tests/fixtures/init/ holds what
init.py wrote for them (commit 5799b1a, before it was split into modules) from params.yaml
there, a frozen copy of the shipped one: the input, so later edits of the shipped file do not
move the golden bytes. A merge that renames or removes a key of params.yaml must make the
same edit in all three .yaml files there."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retrain.data.io import read_table
from tests.conftest import attrition_table, telco_csv

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "init"
TARGETS = {"telco_churn": "churn", "attrition": "Attrition"}


@pytest.fixture(scope="session")
def table_files(tmp_path_factory) -> dict[str, Path]:
    """name -> the table as a file (Telco: the checkout's copy or rebuilt offline)."""
    folder = tmp_path_factory.mktemp("init-tables")
    return {"telco_churn": telco_csv(), "attrition": attrition_table(folder / "attrition.csv")}


@pytest.fixture(scope="session")
def tables(table_files) -> dict[str, pd.DataFrame]:
    return {name: read_table(path) for name, path in table_files.items()}
