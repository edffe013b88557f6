from __future__ import annotations

import pandas as pd
import pytest

from retrain.data.clean import TARGET, clean
from retrain.data.io import read_table
from retrain.data.splits import split
from retrain.errors import DataError
from tests.conftest import telco_schema


@pytest.fixture()
def schema():
    return telco_schema()


def test_empty_file_names_the_file(tmp_path):
    f = tmp_path / "batch.csv"
    f.write_text("")
    with pytest.raises(DataError, match=r"batch.csv: file is empty"):
        read_table(f)


def test_header_only_file(tmp_path):
    f = tmp_path / "batch.csv"
    f.write_text("a,b\n")
    with pytest.raises(DataError, match=r"batch.csv: table has no rows"):
        read_table(f)


def test_corrupt_parquet_names_the_file(tmp_path):
    f = tmp_path / "batch.parquet"
    f.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match=r"batch.parquet: unreadable parquet file"):
        read_table(f)


def test_missing_path_and_wrong_suffix(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_table(tmp_path / "nope.csv")
    f = tmp_path / "x.xlsx"
    f.write_text("x")
    with pytest.raises(DataError, match="unsupported file type"):
        read_table(f)


def test_folder_concatenates_in_name_order_and_checks_columns(tmp_path):
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "b.csv", index=False)
    pd.DataFrame({"a": [2]}).to_parquet(tmp_path / "a.parquet")
    assert read_table(tmp_path)["a"].tolist() == [2, 1]
    pd.DataFrame({"z": [3]}).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(DataError, match=r"c.csv: columns differ .*extra \['z'\]"):
        read_table(tmp_path)


def test_clean_rejects_text_in_numeric_column(schema, raw_csv):
    df = pd.read_csv(raw_csv).astype({"tenure": object})
    df.loc[7, "tenure"] = "twelve"
    with pytest.raises(
        DataError, match=r"x.csv: column 'tenure' is not numeric \(e.g. 'twelve'\)"
    ):
        clean(df, schema, {}, source="x.csv")


def test_clean_drops_duplicates_and_maps_target(schema, raw_csv):
    df = pd.read_csv(raw_csv).head(200)
    dup = pd.concat([df, df.head(5)], ignore_index=True)
    dup.loc[len(dup) - 1, "tenure"] = 999  # same id, different row
    out, report = clean(dup, schema, {"total_charges": 0.0})
    assert report.duplicate_rows == 4 and report.duplicate_ids == 1
    assert len(out) == 200
    assert set(out[TARGET]) == {0, 1}
    assert out[TARGET].sum() == (df["churn"] == "Yes").sum()


def test_clean_rejects_single_class_target(schema, raw_csv):
    df = pd.read_csv(raw_csv).head(50)
    df["churn"] = "No"
    with pytest.raises(DataError, match="no rows of the positive class"):
        clean(df, schema, {})


def test_split_is_seeded(schema, raw_csv):
    table, _ = clean(pd.read_csv(raw_csv), schema, {"total_charges": 0.0})
    a = split(table, test_size=0.2, val_size=0.2, seed=1)
    b = split(table, test_size=0.2, val_size=0.2, seed=1)
    c = split(table, test_size=0.2, val_size=0.2, seed=2)
    assert all(x.equals(y) for x, y in zip(a, b, strict=True))
    assert not a[2].equals(c[2])
