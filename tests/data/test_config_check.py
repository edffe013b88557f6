"""Wrong-config corpus: params.yaml or the suite disagrees with the data; `validate` fails
first, in one line naming the file, the key and the column."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from retrain.config import DatasetSchema
from retrain.errors import ConfigMismatch
from retrain.init import build_suite, profile
from retrain.stages import validate
from retrain.stages._common import stage_main
from retrain.validation.suite import validate_frame

pytestmark = pytest.mark.data


def tiny_table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "member_id": np.arange(1, n + 1),
            "age": rng.integers(18, 80, n),
            "income": np.round(rng.normal(50_000, 9_000, n), 2),
            "visits": rng.integers(0, 400, n),
            "plan": rng.choice(["basic", "plus", "pro"], n),
            "region": rng.choice(["north", "south"], n),
            "label": rng.choice(["yes", "no"], n, p=[0.3, 0.7]),
        }
    )


@pytest.fixture()
def project(tmp_path, default_params_raw) -> tuple[Path, dict[str, Any]]:
    """A table, its drafted suite and params for it, all under tmp_path."""
    df = tiny_table()
    (tmp_path / "raw").mkdir()
    df.to_csv(tmp_path / "raw" / "members.csv", index=False)
    prof = profile(df, target="label", name="members")
    suite = tmp_path / "members.json"
    suite.write_text(json.dumps(build_suite(df, prof), indent=2))
    raw = copy.deepcopy(default_params_raw)
    raw["dataset"] = {
        "name": "members",
        "suite": str(suite),
        "target": "label",
        "positive_class": "yes",
        "id_column": "member_id",
        "numeric": ["age", "income", "visits"],
        "categorical": ["plan", "region"],
    }
    raw["prepare"]["fill_values"] = {}
    raw["report"]["slices"] = ["plan"]
    raw["registry"]["gate"]["slices"] = ["region"]
    for key in raw["paths"]:
        raw["paths"][key] = str(tmp_path / "out" / key)
    raw["paths"]["raw_data"] = str(tmp_path / "raw")
    return tmp_path, raw


def run_validate(tmp: Path, raw: dict[str, Any], capsys) -> tuple[int, str]:
    params = tmp / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(SystemExit) as exit_:
        stage_main("validate", validate.run, ["--params", str(params)])
    return int(exit_.value.code or 0), capsys.readouterr().err.strip()


def test_the_drafted_project_validates(project, capsys):
    tmp, raw = project
    params = tmp / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    stage_main("validate", validate.run, ["--params", str(params)])
    assert "expectations of members passed" in capsys.readouterr().out


def _set(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for p in parents:
        node = node[p]
    node[leaf] = value


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"dataset.target": "labell"},
            r"params.yaml: dataset.target: column 'labell' is not a column of .*members.csv; "
            r"did you mean 'label'\?",
        ),
        (
            {
                "dataset.numeric": ["age", "income", "visits", "plan"],
                "dataset.categorical": ["region"],
            },
            r"params.yaml: dataset.numeric: column 'plan' holds text in .*members.csv "
            r"\(300 of 300 values, e.g. '\w+'\)",
        ),
        (
            {"dataset.numeric": ["age", "income", "visit"]},
            r"params.yaml: dataset.numeric: column 'visit' is not a column of .*members.csv; "
            r"did you mean 'visits'\?",
        ),
        (
            {"dataset.positive_class": "Yes"},
            r"params.yaml: dataset.positive_class: 'Yes' never occurs in column 'label' of "
            r".*members.csv \(values: \['no', 'yes'\]\)",
        ),
        (
            {"dataset.positive_class": True},
            r"dataset.positive_class: True never occurs .*quote the value",
        ),
        (
            {"dataset.id_column": "id"},
            r"params.yaml: dataset.id_column: column 'id' is not a column of .*members.csv",
        ),
        (
            {"report.slices": ["regionn"]},
            r"params.yaml: report.slices names column\(s\) \['regionn'\]",
        ),
        (
            {"registry.gate.slices": ["planx"]},
            r"params.yaml: registry.gate.slices names \['planx'\]",
        ),
        (
            {"prepare.fill_values": {"incomes": 0}},
            r"params.yaml: prepare.fill_values names column 'incomes'",
        ),
    ],
)
def test_wrong_config_fails_validate_first_in_one_line(project, capsys, changes, expected):
    tmp, raw = project
    for key, value in changes.items():
        _set(raw, key, value)
    code, err = run_validate(tmp, raw, capsys)
    assert code == 1
    assert len(err.splitlines()) == 1, err
    assert __import__("re").search(expected, err), err
    # Nothing past the check ran: no prepared split, no Data Docs.
    assert not (tmp / "out" / "train").exists()
    assert not (tmp / "out" / "data_docs" / "index.html").exists()


def test_id_column_may_be_left_out(project, capsys):
    tmp, raw = project
    del raw["dataset"]["id_column"]
    params = tmp / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    stage_main("validate", validate.run, ["--params", str(params)])
    assert "passed" in capsys.readouterr().out


def test_numeric_column_declared_categorical_warns(project, capsys):
    tmp, raw = project
    raw["dataset"]["numeric"] = ["age", "income"]
    raw["dataset"]["categorical"] = ["plan", "region", "visits"]
    suite = json.loads(Path(raw["dataset"]["suite"]).read_text())
    params = tmp / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert suite["expectations"]
    stage_main("validate", validate.run, ["--params", str(params)])
    out = capsys.readouterr().out
    assert "warning: " in out and "dataset.categorical: column 'visits' is numeric with" in out


def _suite_with(raw: dict[str, Any], edit) -> Path:
    path = Path(raw["dataset"]["suite"])
    suite = json.loads(path.read_text())
    index = next(
        i
        for i, e in enumerate(suite["expectations"])
        if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"]["column"] == "label"
    )
    edit(suite["expectations"][index])
    path.write_text(json.dumps(suite, indent=2))
    return path


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda e: e.update(type="expect_column_values_to_be_inset"),
            r"members.json: expectation #4 expect_column_values_to_be_inset \(column 'label'\): "
            r"unknown expectation type; did you mean 'expect_column_values_to_be_in_set'\?",
        ),
        (
            lambda e: e["kwargs"].update(valueset=e["kwargs"].pop("value_set")),
            r"members.json: expectation #4 expect_column_values_to_be_in_set \(column 'label'\): "
            r"(unknown|missing) keyword '(valueset|value_set)'",
        ),
    ],
)
def test_bad_suite_entry_fails_in_one_line(project, capsys, edit, expected):
    tmp, raw = project
    _suite_with(raw, edit)
    code, err = run_validate(tmp, raw, capsys)
    assert code == 1 and len(err.splitlines()) == 1, err
    assert __import__("re").search(expected, err), err
    # Raised before any work: no prepared split, no Data Docs.
    assert not (tmp / "out" / "train").exists()
    assert not (tmp / "out" / "data_docs" / "index.html").exists()


def test_typo_in_suite_no_longer_lets_a_bad_label_pass(project):
    # Before: GE dropped the misspelt label check and a table with label "maybe" passed.
    tmp, raw = project
    suite = _suite_with(raw, lambda e: e.update(type="expect_column_values_to_be_inset"))
    bad = tiny_table().assign(label=lambda d: d["label"].where(d.index > 5, "maybe"))
    with pytest.raises(ConfigMismatch, match="unknown expectation type"):
        schema = DatasetSchema(**{**raw["dataset"], "suite": suite})
        validate_frame(bad, suite, "batch.csv", schema=schema)


def test_cli_validate_checks_params_against_the_table_first(project):
    from typer.testing import CliRunner

    from retrain.cli import app

    tmp, raw = project
    raw["dataset"]["numeric"] = ["age", "income", "visits", "region"]
    raw["dataset"]["categorical"] = ["plan"]
    raw["registry"]["gate"]["slices"] = ["plan"]
    params = tmp / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    table = tmp / "raw" / "members.csv"
    out = CliRunner().invoke(app, ["validate", str(table), "--params", str(params)])
    assert out.exit_code == 1
    assert out.output.strip().splitlines() == [
        f"error: {params}: dataset.numeric: column 'region' holds text in {table} "
        f"(300 of 300 values, e.g. {pd.read_csv(table)['region'][0]!r}); declare it under "
        "dataset.categorical, or fix the export"
    ]
