"""`retrain predict`: one-line errors and a non-zero exit on bad input; outputs stay inside
the project. (Scoring itself, with the prod model, is in tests/integration/test_records.py.)"""

from __future__ import annotations

import shutil
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
