"""The pandas precheck: it never changes a result, and the passing path never runs GE."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from retrain.validation.precheck import passes
from retrain.validation.suite import validate_frame
from tests.conftest import REPO, telco_schema

pytestmark = pytest.mark.data

SUITE = REPO / "expectations" / "telco_churn.json"
SCHEMA = telco_schema()  # whichever table the checkout is configured for


@pytest.fixture(scope="module")
def real(raw_csv) -> pd.DataFrame:
    return pd.read_csv(raw_csv)


def _broken(real: pd.DataFrame) -> dict[str, pd.DataFrame]:
    wrong_type = real.astype({"monthly_charges": object})
    wrong_type.loc[3, "monthly_charges"] = "29,85 EUR"
    new_category = real.copy()
    new_category.loc[[1, 2], "payment_method"] = "Crypto"
    null_target = real.copy()
    null_target.loc[0, "churn"] = np.nan
    billed_blank = real.copy()
    billed_blank.loc[billed_blank.index[billed_blank["tenure"] > 0][0], "total_charges"] = np.nan
    too_many_blanks = real.copy()
    too_many_blanks.loc[too_many_blanks.index[:80], ["tenure", "total_charges"]] = [0, np.nan]
    return {
        "real": real,
        "missing column": real.drop(columns=["contract"]),
        "extra column": real.assign(email="a@b.c"),
        "wrong type": wrong_type,
        "new category": new_category,
        "null target": null_target,
        "all-null column": real.assign(tech_support=None),
        "billed blank": billed_blank,
        "too many blanks": too_many_blanks,
        "duplicated id": pd.concat([real, real.head(1)], ignore_index=True),
        "warning only": real.assign(monthly_charges=real["monthly_charges"] * 0.3),
        "too few rows": real.head(50),
        "nullable ints": real.astype({"tenure": "Int64"}),
        "out of range": real.assign(tenure=real["tenure"] + 100),
    }


def test_every_expectation_of_the_suite_is_proven_on_the_real_data(real):
    suite = json.loads(SUITE.read_text())
    assert [e["type"] for e in suite["expectations"] if not passes(real, e)] == []


def test_precheck_gives_the_same_result_as_great_expectations(real):
    for name, df in _broken(real).items():
        fast = validate_frame(df, SUITE, "batch.csv", schema=SCHEMA)
        full = validate_frame(df, SUITE, "batch.csv", schema=SCHEMA, precheck=False)
        assert fast.to_dict() == full.to_dict(), name


def test_unknown_types_and_kwargs_go_to_great_expectations(real):
    column = {"column": "tenure"}
    assert not passes(real, {"type": "expect_column_values_to_be_increasing", "kwargs": column})
    assert not passes(real, {"type": "expect_column_to_exist", "kwargs": column})
    assert not passes(
        real,
        {"type": "expect_column_values_to_not_be_null", "kwargs": {**column, "strict": True}},
    )
    assert not passes(real, {"type": "expect_column_values_to_not_be_null", "kwargs": {}})
    assert not passes(real, "not an expectation")  # type: ignore[arg-type]


def test_passing_path_does_not_import_great_expectations(raw_csv):
    code = (
        "import sys, pandas as pd; from pathlib import Path; "
        "from retrain.config import DatasetSchema; "
        "from retrain.validation.suite import validate_frame; "
        f"schema = DatasetSchema.model_validate_json({SCHEMA.model_dump_json()!r}); "
        f"r = validate_frame(pd.read_csv({str(raw_csv)!r}), Path({str(SUITE)!r}), 'x.csv', "
        "schema=schema); "
        "print(r.success, r.evaluated, 'great_expectations' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [
        "True",
        str(len(json.loads(SUITE.read_text())["expectations"])),
        "False",
    ]
