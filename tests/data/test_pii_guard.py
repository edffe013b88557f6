"""The PII guard against the real pinned data and a copy of it with an e-mail column added."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from retrain.cli import app
from retrain.errors import ValidationFailed
from retrain.stages import validate
from retrain.validation.pii import find_pii
from retrain.validation.suite import validate_frame
from tests.conftest import REPO, params_in, telco_schema

pytestmark = pytest.mark.data


def test_real_features_do_not_look_like_personal_data(raw_csv):
    schema = telco_schema()
    assert find_pii(pd.read_csv(raw_csv), schema.features) == []


def _with_contact_column(tmp_path: Path, raw_csv: Path, column: str) -> Path:
    df = pd.read_csv(raw_csv)
    df[column] = [f"customer{i}@example.com" for i in range(len(df))]
    path = tmp_path / "raw" / "batch.csv"
    path.parent.mkdir()
    df.to_csv(path, index=False)
    return path


def _declaring(raw: dict[str, Any], table: Path, column: str) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    raw["dataset"]["categorical"].append(column)
    raw["paths"]["raw_data"] = str(table)
    return raw


# "email" is caught by its name; "contact" only by its values.
@pytest.mark.parametrize("column", ["email", "contact"])
def test_email_feature_fails_validate_with_one_clear_line(
    tmp_path, default_params_raw, raw_csv, column
):
    table = _with_contact_column(tmp_path, raw_csv, column)
    # params_in keeps an absolute raw_data as it is.
    params = params_in(tmp_path, _declaring(default_params_raw, table, column))
    with pytest.raises(ValidationFailed) as err:
        validate.run(params)
    message = str(err.value)
    assert message.startswith(f"{table}: column '{column}' looks like personal data (e-mail")
    assert "dataset.pii_allow" in message
    assert "\n" not in message and "@example.com" not in message
    summary = json.loads(params.paths.validation_summary.read_text())
    assert summary["success"] is False
    (entry,) = summary["tables"]
    assert entry["headline"] == message
    assert [(f["column"], f["kind"]) for f in entry["pii"]] == [(column, "e-mail address")]


def test_allowed_column_passes_the_guard(tmp_path, default_params_raw, raw_csv):
    table = _with_contact_column(tmp_path, raw_csv, "email")
    raw = _declaring(default_params_raw, table, "email")
    raw["dataset"]["pii_allow"] = ["email"]
    params = params_in(tmp_path, raw)
    result = validate_frame(
        pd.read_csv(table), params.dataset.suite, "b.csv", schema=params.dataset
    )
    assert result.pii == []
    # The suite still wants a reviewed schema change for the new column.
    assert "unexpected ['email']" in result.headline()


def test_cli_validate_rejects_personal_data(tmp_path, default_params_raw, raw_csv):
    table = _with_contact_column(tmp_path, raw_csv, "email")
    raw = _declaring(default_params_raw, table, "email")
    raw["dataset"]["suite"] = str(REPO / raw["dataset"]["suite"])
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = CliRunner().invoke(app, ["validate", str(table), "--params", str(params_file)])
    assert out.exit_code == 1
    first = out.output.splitlines()[0]
    assert first.startswith(f"{table}: column 'email' looks like personal data (e-mail address")
    assert f"[personal data] {table}: column 'email'" in out.output
