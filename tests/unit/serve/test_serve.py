"""The online service's parts that need no trained model: request models for any schema, the
request checks against Great Expectations, the predictions log, canary buckets, exposure."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from retrain.config import DatasetSchema
from tests.conftest import REPO, telco_csv, telco_schema


def test_row_model_follows_any_schema():
    from retrain.serve.schema import row_model

    schema = DatasetSchema(
        name="loan_default",
        suite=Path("expectations/loans.json"),
        target="default",
        positive_class=1,
        id_column="loan_id",
        numeric=["amount", "rate"],
        categorical=["purpose"],
    )
    Row = row_model(schema)
    assert Row.__name__ == "LoanDefaultRow"
    row = Row(amount=1000, rate=0.05, purpose="car")
    assert row.amount == 1000.0 and row.rate == 0.05 and row.loan_id is None
    for loose in ("0.05", True, False):  # strict: a string or a bool is not a number
        with pytest.raises(ValidationError) as wrong:
            Row(amount=1.0, rate=loose, purpose="car")
        assert wrong.value.errors()[0]["loc"] == ("rate",)
    with pytest.raises(ValidationError) as missing:
        Row(amount=1.0, purpose="car")
    assert missing.value.errors()[0]["loc"] == ("rate",)
    with pytest.raises(ValidationError) as extra:
        Row(amount=1.0, rate=0.1, purpose="car", income=5)
    assert extra.value.errors()[0]["type"] == "extra_forbidden"
    with pytest.raises(ValidationError):
        Row(amount="lots", rate=0.1, purpose="car")
    with pytest.raises(ValidationError):
        Row(amount=1.0, rate=0.1, purpose=7)  # a number is not a category


def test_the_request_model_documents_what_any_suite_demands(tmp_path):
    """Another table's suite: its rules (not Telco's) become the JSON schema."""
    import json

    from retrain.serve.checks import RequestChecker
    from retrain.serve.schema import row_model

    def expect(kind: str, column: str, **kwargs: object) -> dict[str, object]:
        return {"type": f"expect_column_values_to_{kind}", "kwargs": {"column": column, **kwargs}}

    suite = tmp_path / "loans.json"
    ints = ["int64", "Int64", "uint8"]
    suite.write_text(
        json.dumps(
            {
                "expectations": [
                    expect("not_be_null", "amount"),
                    expect("be_between", "amount", min_value=0, max_value=5e5),
                    expect("be_in_type_list", "term", type_list=ints),
                    expect("be_in_type_list", "rate", type_list=["int64", "float64"]),
                    expect("not_be_null", "rate", row_condition="amount > 0"),
                    expect("be_in_set", "purpose", value_set=["car", "home"]),
                    expect("not_be_null", "purpose", mostly=0.9),  # a table's share: not a row's
                ]
            }
        )
    )
    schema = DatasetSchema(
        name="loan_default",
        suite=suite,
        target="default",
        positive_class=1,
        numeric=["amount", "rate", "term"],
        categorical=["purpose"],
    )
    props = row_model(schema, RequestChecker(suite, schema).rules()).model_json_schema()[
        "properties"
    ]
    assert props["amount"]["type"] == "number" and "anyOf" not in props["amount"]
    assert (props["amount"]["minimum"], props["amount"]["maximum"]) == (0, 5e5)
    assert props["term"]["anyOf"][0]["type"] == "integer"  # nullable: no not-null rule
    assert props["rate"]["anyOf"] == [{"type": "number"}, {"type": "null"}]  # conditional
    assert props["purpose"]["anyOf"][0] == {"type": "string", "enum": ["car", "home"]}


@pytest.fixture(scope="module")
def checker():
    from retrain.serve.checks import RequestChecker

    schema = telco_schema()  # the Telco rows below, whichever table the checkout holds
    return RequestChecker(REPO / schema.suite, schema)


def _variants() -> list[pd.DataFrame]:
    """Real rows and rows broken in every way a client can break them."""
    table = pd.read_csv(telco_csv()).drop(columns=["churn"])
    base = table.iloc[[0, 5, 11]].reset_index(drop=True)
    out = [base, base.head(1)]
    for col, values in {
        "tenure": [np.nan, -1, 500, 0],
        "monthly_charges": [np.nan, 5000.0],
        "total_charges": [np.nan],
        "female": [2, np.nan, 0.5],
        "contract": [None, "Ten year", "month-to-month"],
        "payment_method": ["Bitcoin", None],
        "customer_id": [None],
    }.items():
        for value in values:
            bad = base.copy()
            bad[col] = bad[col].astype(object)
            bad.loc[1, col] = value
            if bad[col].map(lambda v: isinstance(v, int | float) or v is None).all():
                bad[col] = (
                    pd.to_numeric(bad[col])
                    if col not in ("contract", "payment_method")
                    else bad[col]
                )
            out.append(bad)
    new = base.copy()  # a new customer: tenure 0, nothing billed yet (the suite allows it)
    new.loc[1, ["tenure", "total_charges"]] = [0, np.nan]
    billed = base.copy()  # ... but a billed customer with a blank total is a defect
    billed.loc[1, ["tenure", "total_charges"]] = [5, np.nan]
    out += [new, billed]
    dup = base.copy()
    dup.loc[2, "customer_id"] = dup.loc[0, "customer_id"]
    text = base.copy().astype({"tenure": object})
    text.loc[0, "tenure"] = "twelve"
    return [*out, dup, text]


def test_fast_checks_never_pass_what_great_expectations_fails(checker):
    from retrain.validation.suite import validate_suite

    verdicts = []
    for df in _variants():
        cols = {c: df[c].to_numpy() for c in df.columns}
        fast = checker.fast_pass(cols, df)
        ge = validate_suite(df, checker.suite, "t", optional_columns=checker.optional)
        assert not (fast and not ge.success), (df.T, ge.headline())
        verdicts.append((fast, ge.success))
    assert verdicts[0] == (True, True) and verdicts[1] == (True, True)  # the fast path is used
    assert verdicts[-4] == (True, True) and verdicts[-3] == (False, False)  # row condition
    assert sum(not ge for _, ge in verdicts) >= 10  # and the variants do break the suite


def test_a_new_customer_s_one_blank_row_passes_the_fast_checks_as_ge_passes_it(checker):
    """A column whose every value is null (one row, a blank) passes GE's range and set
    expectations vacuously: the fast checks agree, so that row never waits for GE."""
    from retrain.validation.suite import validate_suite

    row = pd.read_csv(telco_csv()).drop(columns=["churn"]).head(1)
    row[["tenure", "total_charges"]] = [0, np.nan]
    billed = row.assign(tenure=5)
    for df, verdict in ((row, True), (billed, False)):
        cols = {c: df[c].to_numpy() for c in df.columns}
        ge = validate_suite(df, checker.suite, "t", optional_columns=checker.optional)
        assert (checker.fast_pass(cols, df), ge.success) == (verdict, verdict)


def test_request_checks_name_column_and_problem(checker):
    table = pd.read_csv(telco_csv()).drop(columns=["churn"]).head(3)
    assert checker.check(table) == []
    bad = table.copy()
    bad.loc[2, "contract"] = "Ten year"
    (problem,) = checker.check(bad)
    assert (problem.column, problem.problem, problem.rows) == ("contract", "unseen category", (2,))
    missing = checker.check(table.drop(columns=["tenure"]).assign(colour="red"))
    assert {(p.column, p.problem) for p in missing} == {
        ("tenure", "missing column"),
        ("colour", "unexpected column"),
    }
    # a blank total_charges of a new customer is a row the batch suite accepts: so do we
    new = table.copy()
    new.loc[0, ["tenure", "total_charges"]] = [0, math.nan]
    assert checker.check(new) == []


def test_predictions_log_flushes_rotates_and_reads_back(tmp_path):
    from retrain.serve.log import Entry, PredictionLog, read_log

    old = tmp_path / "log" / (datetime.now(UTC).date() - timedelta(days=40)).isoformat()
    old.mkdir(parents=True)
    (old / "part-x.parquet").write_bytes(b"")
    plog = PredictionLog(
        tmp_path / "log", flush_s=30, flush_rows=4, keep_days=30, columns=["id", "x"]
    )
    plog.start()
    t0 = datetime.now(UTC)
    for i in range(3):
        plog.append(
            Entry(
                {"id": np.array([f"a{i}", f"b{i}"], dtype=object), "x": np.array([i, i + 0.5])},
                {"probability": np.array([0.1, 0.9]), "label": np.array([0, 1])},
                "v1.0.0",
                "abc",
                t0 + timedelta(seconds=i),
                f"r{i}",
            )
        )
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while plog.files < 1 and datetime.now(UTC) < deadline:  # 4 rows reached: flushed early
        time.sleep(0.01)
    assert plog.files == 1 and not old.exists()  # written, and the 40-day-old folder is gone
    plog.close()  # the last 2 rows are flushed on close
    frame = read_log(tmp_path / "log")
    assert len(frame) == 6 and plog.written == 6 and plog.dropped == 0
    assert frame["id"].tolist() == ["a0", "b0", "a1", "b1", "a2", "b2"]
    assert frame["x"].tolist() == [0, 0.5, 1, 1.5, 2, 2.5]
    assert set(frame["model_version"]) == {"v1.0.0"} and frame["label"].tolist() == [0, 1] * 3
    assert len(read_log(tmp_path / "log", since=t0)) == 4
    assert not list((tmp_path / "log").rglob("*.tmp"))


def test_canary_buckets_are_sticky_and_proportional():
    from retrain.serve.model import ServingState

    prod, canary = object(), object()
    state = ServingState(prod, canary, 0.25)  # type: ignore[arg-type]
    picks = [state.pick(f"k{i}") for i in range(4000)]
    assert picks == [state.pick(f"k{i}") for i in range(4000)]
    assert 0.22 < sum(p is canary for p in picks) / 4000 < 0.28
    assert state.pick(None) is prod
    assert ServingState(prod, None, 0.5).pick("k1") is prod  # type: ignore[arg-type]


def test_binding_beyond_loopback_warns_about_authentication(monkeypatch):
    from retrain.serve.run import exposure_warning

    monkeypatch.delenv("RETRAIN_SERVE_TOKEN", raising=False)
    assert exposure_warning("127.0.0.1") is None and exposure_warning("::1") is None
    assert exposure_warning("localhost") is None
    warning = exposure_warning("0.0.0.0")
    assert warning and "no authentication" in warning and "RETRAIN_SERVE_TOKEN" in warning
    monkeypatch.setenv("RETRAIN_SERVE_TOKEN", "x")
    assert "no authentication" not in (exposure_warning("0.0.0.0") or "")
