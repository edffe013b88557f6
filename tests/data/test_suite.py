"""The suite against the real pinned data and against broken copies of it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from retrain.errors import ValidationFailed
from retrain.stages import validate
from retrain.validation.suite import validate_frame
from tests.conftest import REPO, params_in, telco_csv, telco_schema

pytestmark = pytest.mark.data

SUITE = REPO / "expectations" / "telco_churn.json"


@pytest.fixture(scope="module")
def real(raw_csv) -> pd.DataFrame:
    return pd.read_csv(raw_csv)


def check(df: pd.DataFrame, source: str = "batch.csv"):
    return validate_frame(df, SUITE, source, schema=telco_schema())


def test_every_expectation_says_why_and_has_a_severity():
    suite = json.loads(SUITE.read_text())
    assert suite["expectations"]
    for e in suite["expectations"]:
        assert len(e["meta"]["why"]) > 20, e
        assert e["severity"] in ("critical", "warning", "info")


def test_suite_covers_every_declared_column():
    schema = telco_schema()
    suite = json.loads(SUITE.read_text())
    (column_set,) = [
        e["kwargs"]["column_set"]
        for e in suite["expectations"]
        if e["type"] == "expect_table_columns_to_match_set"
    ]
    assert sorted(column_set) == sorted(schema.columns)


def test_real_data_passes_with_its_known_defect(real):
    assert real["total_charges"].isna().sum() == 11  # the documented defect is present ...
    result = check(real, "data/raw/telco_churn.csv")
    assert result.success, result.headline()  # ... and accepted by the suite
    assert result.failures == []
    assert result.evaluated >= 40


def _first_blocking(df: pd.DataFrame):
    result = check(df)
    assert not result.success
    return result.blocking_failures[0], result.headline()


def test_missing_column(real):
    failure, headline = _first_blocking(real.drop(columns=["contract"]))
    assert headline.startswith("batch.csv: table failed expect_table_columns_to_match_set")
    assert "missing ['contract']" in headline


def test_extra_column(real):
    _, headline = _first_blocking(real.assign(email="a@b.c"))
    assert "unexpected ['email']" in headline


def test_wrong_type(real):
    broken = real.astype({"monthly_charges": object})
    broken.loc[3, "monthly_charges"] = "29,85 EUR"
    failure, headline = _first_blocking(broken)
    assert failure.column == "monthly_charges"
    assert failure.expectation == "expect_column_values_to_be_in_type_list"
    assert "batch.csv: column 'monthly_charges'" in headline
    # GE judges the dtype (every row); the failure names the one value that is not a number.
    assert (failure.unexpected_count, failure.examples, failure.rows) == (1, ["29,85 EUR"], [3])
    assert "1 of 7043 values are not numbers" in failure.detail


def test_new_category(real):
    broken = real.copy()
    broken.loc[[1, 2], "payment_method"] = "Crypto"
    failure, headline = _first_blocking(broken)
    assert failure.column == "payment_method"
    assert failure.unexpected_count == 2
    assert failure.rows == [1, 2]
    assert "Crypto" in headline


def test_null_target(real):
    broken = real.copy()
    broken.loc[0, "churn"] = np.nan
    failure, _ = _first_blocking(broken)
    assert failure.column == "churn"
    assert failure.rows == [0]  # where the null is: its value says nothing


def test_all_null_column(real):
    failure, _ = _first_blocking(real.assign(tech_support=None))
    assert failure.column == "tech_support"


def test_blank_total_charges_for_a_billed_customer_blocks(real):
    broken = real.copy()
    billed = broken.index[broken["tenure"] > 0][0]
    broken.loc[billed, "total_charges"] = np.nan
    failure, _ = _first_blocking(broken)
    assert failure.column == "total_charges"
    assert failure.unexpected_count == 1


def test_duplicated_id(real):
    broken = pd.concat([real, real.head(1)], ignore_index=True)
    failure, _ = _first_blocking(broken)
    assert failure.column == "customer_id"
    assert failure.expectation == "expect_column_values_to_be_unique"


def test_warnings_do_not_block(real):
    cheap = real.assign(monthly_charges=real["monthly_charges"] * 0.3)
    result = check(cheap)
    assert result.success
    assert [f.column for f in result.failures] == ["monthly_charges"]
    assert result.failures[0].severity == "warning"


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "file is empty"), (b"\x00\x01garbage", "batch.parquet: unreadable parquet file")],
)
def test_validate_stage_fails_on_empty_or_corrupt_file(
    tmp_path, default_params_raw, content, message
):
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    name = "batch.csv" if not content else "batch.parquet"
    (raw_dir / name).write_bytes(content)
    params = params_in(tmp_path, default_params_raw)
    params = params.model_copy(
        update={"paths": params.paths.model_copy(update={"raw_data": raw_dir})}
    )
    with pytest.raises(ValidationFailed, match=message):
        validate.run(params)
    summary = json.loads(params.paths.validation_summary.read_text())
    assert message in summary["tables"][0]["headline"]


def test_validate_stage_writes_summary_and_data_docs(tmp_path, default_params_raw, raw_csv):
    params = params_in(tmp_path, default_params_raw)
    (result,) = validate.run(params)
    assert result.success
    summary = json.loads(params.paths.validation_summary.read_text())
    assert summary["success"] is True
    assert summary["tables"][0]["source"].endswith("telco_churn.csv")
    assert (params.paths.data_docs / "index.html").exists()


def test_data_docs_name_the_run_and_load_no_image_from_the_network(real, tmp_path):
    # Issue 28: offline, Data Docs showed a broken logo (GE loads it from S3) and listed the
    # validation as "Run Name __none__".
    import re

    docs = tmp_path / "docs"
    validate_frame(
        real.head(50), SUITE, "data/raw/batch_7.csv", schema=telco_schema(), data_docs_dir=docs
    )
    pages = {p: p.read_text(encoding="utf-8") for p in docs.rglob("*.html")}
    assert len(pages) >= 3  # index, suite, validation
    for page, html in pages.items():
        images = re.findall(r"<img[^>]*\bsrc=\"([^\"]*)\"", html) + re.findall(
            r"url\(['\"]?([^'\")]*)", html
        )
        remote = [u for u in images if "://" in u]
        assert not remote, (page, remote)
        for src in images:  # each image is in the site itself
            assert (page.parent / src.split("?")[0]).resolve().is_file(), (page, src)
        assert "__none__" not in html and "__none__" not in str(page.relative_to(docs)), page
    index = pages[docs / "index.html"]
    assert "batch_7.csv" in re.sub(r"<[^>]+>", " ", index)


def test_data_docs_list_every_pinned_file_with_its_accepted_batch(tmp_path, default_params_raw):
    # Issue 28: a drift retrain validated the accepted batch, but its Data Docs showed only
    # the pinned table (the site was built for the last file alone).
    import copy
    import re

    from retrain.orchestration import browser

    raw = copy.deepcopy(default_params_raw)
    folder = tmp_path / "raw"
    raw["paths"]["raw_data"], raw["paths"]["batches"] = str(folder), str(folder / "batches")
    params = params_in(tmp_path, raw)
    table = pd.read_csv(telco_csv())
    (folder / "batches").mkdir(parents=True)
    table.iloc[:600].to_csv(folder / "telco_churn.csv", index=False)
    batch = "mix-0001-0123456789ab.csv"  # as ingest names an accepted batch
    table.iloc[600:700].to_csv(folder / "batches" / batch, index=False)
    results = validate.run(params)
    assert [r.success for r in results] == [True, True]
    index = params.paths.data_docs / "index.html"
    listed = re.sub(r"<[^>]+>", " ", browser.dump_dom(index))  # as a user opens it, offline
    assert batch in listed and "telco_churn.csv" in listed
    # ... each with its own validation page.
    pages = [p for p in params.paths.data_docs.rglob("*.html") if batch in p.read_text()]
    assert any("validations" in p.parts for p in pages), pages
