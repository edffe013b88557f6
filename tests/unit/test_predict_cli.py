"""`retrain predict`: one-line errors and a non-zero exit on bad input; outputs stay inside
the project. (Scoring itself, with the prod model, is in tests/integration/test_records.py.)"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retrain.cli import app
from tests.conftest import REPO


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    monkeypatch.chdir(root)
    return root


def _run(*args: str):
    return CliRunner().invoke(app, ["predict", *args])


def test_a_missing_input_is_one_line_and_not_a_data_fetch_hint(project: Path):
    out = _run("nope.csv")
    assert out.exit_code == 1
    assert out.output.strip() == "error: nope.csv: not found (the table to score)"
    assert "data fetch" not in out.output


def test_an_unreadable_input_is_one_line(project: Path):
    (project / "empty.csv").write_text("")
    out = _run("empty.csv")
    assert out.exit_code == 1 and out.output.strip() == "error: empty.csv: file is empty"


@pytest.mark.parametrize("dest", ["/tmp/scores.parquet", "../outside.parquet"])
def test_the_output_must_stay_inside_the_project(project: Path, dest: str):
    (project / "in.csv").write_text("a,b\n1,2\n")
    out = _run("in.csv", "--out", dest)
    assert out.exit_code == 1
    (line,) = out.output.strip().splitlines()
    assert "outside the project" in line and str(project) in line


def test_a_link_out_of_the_project_is_refused(project: Path, tmp_path: Path):
    from retrain.predicting import UnsafePath, inside

    (project / "predictions").symlink_to(tmp_path)
    with pytest.raises(UnsafePath, match="outside the project"):
        inside(project, "predictions/x.parquet", "output path")
    assert inside(project, "reports/x.parquet", "output path") == project / "reports/x.parquet"


# --- outputs never land on managed paths; the flow reads only the data folders (issue 25) ---


@pytest.mark.parametrize(
    "dest",
    [
        "data/raw/batches/batch-0001.csv",  # a pinned input batch (issue 25.6)
        "data/landing/new.csv",
        "models/scores.parquet",
        "registry/scores.csv",
        "metrics/prepare.csv",
        "predictions/online/2026-12-06/part.parquet",  # the serve log, under predictions/
    ],
)
def test_an_output_on_a_managed_path_is_refused_and_nothing_is_written(project: Path, dest: str):
    target = project / dest
    target.parent.mkdir(parents=True)
    target.write_bytes(b"customer_id,tenure\n1,3\n")
    (project / "in.csv").write_text("a,b\n1,2\n")
    out = _run("in.csv", "--out", dest)
    assert out.exit_code == 1
    (line,) = out.output.strip().splitlines()
    assert "which the pipeline manages" in line and dest.split("/")[0] in line
    assert target.read_bytes() == b"customer_id,tenure\n1,3\n"
    assert not (project / "predictions").joinpath("x").exists()


def test_an_output_on_any_dvc_tracked_path_is_refused(project: Path):
    import subprocess
    import sys

    from retrain.config import load_params_at
    from retrain.predicting import UnsafePath, output_for

    pinned = project / "scores" / "pinned.csv"
    pinned.parent.mkdir()
    pinned.write_text("a\n1\n")
    for args in (["init", "--no-scm", "-q"], ["add", "-q", "scores/pinned.csv"]):
        subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, check=True)
    params = load_params_at(project)
    now = datetime.now(UTC)
    with pytest.raises(UnsafePath, match="inside scores/pinned.csv, which the pipeline"):
        output_for(project, params, Path("in.csv"), "scores/pinned.csv", now)
    # Elsewhere in the project, and the default under predictions/, stay allowed.
    assert output_for(project, params, Path("in.csv"), "scores/new.csv", now).name == "new.csv"
    default = output_for(project, params, Path("in.csv"), None, now)
    assert default.parent == project / "predictions"


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.csv"
    secret.write_text("customer_id,tenure\nSECRET-ID-42,hunter2\n")
    return secret


@pytest.mark.parametrize("how", ["absolute", "dotdot", "link"])
def test_the_predict_flow_reads_only_inside_the_data_folders(
    project: Path, tmp_path: Path, how: str
):
    from flows.predict import predict_flow

    from retrain.predicting import UnsafePath

    secret = _secret(tmp_path)
    folder = project / "data" / "predict"
    folder.mkdir(parents=True)
    given = {
        "absolute": str(secret),
        "dotdot": "data/predict/../../../secret.csv",
        "link": "data/predict/in.csv",
    }[how]
    (folder / "in.csv").symlink_to(secret)
    with pytest.raises(UnsafePath) as err:
        predict_flow.fn(input_path=given, repo=str(project))
    message = str(err.value)
    assert "outside the project's data folders" in message and "data/predict" in message
    assert "SECRET" not in message and "hunter2" not in message
    assert not (project / "predictions").exists()


def test_the_predict_flow_refuses_an_output_onto_a_pinned_batch(project: Path):
    from flows.predict import predict_flow

    from retrain.predicting import UnsafePath

    batch = project / "data" / "raw" / "batches" / "b.csv"
    batch.parent.mkdir(parents=True)
    batch.write_text("pinned\n")
    (project / "data" / "predict").mkdir(parents=True)
    (project / "data" / "predict" / "in.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UnsafePath, match="inside data/raw, which the pipeline manages"):
        predict_flow.fn(
            input_path="data/predict/in.csv", output_path=str(batch), repo=str(project)
        )
    assert batch.read_text() == "pinned\n"
