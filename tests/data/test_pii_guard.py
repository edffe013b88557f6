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


def _project_with_email_feature(tmp_path: Path, raw: dict[str, Any]) -> Path:
    """A checkout whose params declare an `email` feature and whose suite accepts the column:
    only the PII guard stands between that column and the pipeline."""
    root = tmp_path / "project"
    (root / "expectations").mkdir(parents=True)
    raw = copy.deepcopy(raw)
    raw["dataset"]["categorical"].append("email")
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    suite = json.loads((REPO / raw["dataset"]["suite"]).read_text())
    for e in suite["expectations"]:
        if e["type"] == "expect_table_columns_to_match_set":
            e["kwargs"]["column_set"].append("email")
    (root / raw["dataset"]["suite"]).write_text(json.dumps(suite))
    return root


def test_ingest_quarantines_a_batch_with_an_email_column(tmp_path, default_params_raw, raw_csv):
    from retrain.config import load_params_at
    from retrain.ingest import ingest_file

    root = _project_with_email_feature(tmp_path, default_params_raw)
    params = load_params_at(root)
    landing = params.paths.landing
    landing.mkdir(parents=True)
    batch = pd.read_csv(raw_csv).head(300)
    batch["email"] = [f"customer{i}@example.com" for i in range(len(batch))]
    file = landing / "batch.csv"
    batch.to_csv(file, index=False)
    original = file.read_bytes()

    result = ingest_file(file, params, version=False)

    assert result.status == "rejected"
    expected = f"{file.name}: column 'email' looks like personal data (e-mail"
    assert result.reason.startswith(expected)
    assert "@example.com" not in result.reason
    kept = Path(str(result.destination))
    assert kept.parent.parent == params.paths.quarantine and kept.read_bytes() == original
    assert not params.paths.batches.exists()  # nothing accepted, nothing to version or push
    report = json.loads((kept.parent / "report.json").read_text())
    assert [(f["column"], f["kind"]) for f in report["pii"]] == [("email", "e-mail address")]
    assert report["failures"] == []  # the suite alone would have accepted it


def test_predict_refuses_a_table_with_an_email_column(
    tmp_path, default_params_raw, raw_csv, prefect_harness
):
    # The session's Prefect server (its tasks report to one): not an ephemeral server of its
    # own, whose start-up times out on a loaded machine.
    from flows.predict import predict_flow

    root = _project_with_email_feature(tmp_path, default_params_raw)
    table = pd.read_csv(raw_csv).head(50).drop(columns=["churn"])
    table["email"] = [f"customer{i}@example.com" for i in range(len(table))]
    src = root.resolve() / "data" / "predict" / "to_score.csv"  # the flow reads data folders
    src.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(src, index=False)
    # The flow's function itself: it validates before it looks for a model or a Prefect run.
    with pytest.raises(ValidationFailed) as err:
        predict_flow.fn(input_path=str(src), repo=str(root))
    assert str(err.value).startswith(f"{src}: column 'email' looks like personal data (e-mail")
    assert not (root / "predictions").exists()


def test_schema_requires_every_declared_column_but_the_target_when_scoring(
    tmp_path, default_params_raw, raw_csv
):
    from retrain.validation.raw import validate_raw

    params = params_in(tmp_path, default_params_raw)
    df = pd.read_csv(raw_csv).head(200)
    scoring = validate_raw(df.drop(columns=["churn"]), params, "s.csv", scoring=True)
    assert scoring.success and scoring.missing_columns == [], scoring.headline()
    training = validate_raw(df.drop(columns=["churn"]), params, "t.csv")
    assert not training.success and training.missing_columns == ["churn"]
    assert "t.csv: column 'churn' is declared in params.yaml dataset but absent" in (
        training.schema_messages()
    )
