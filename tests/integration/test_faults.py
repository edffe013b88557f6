"""The fault corpus (bench/faults.py, issues 12 and 25) on its fast cases.

`python -m bench.faults --quick` runs each fast case in its own scratch repo (one base build,
copied per case, each copy with its own DVC remote); each must hold: for a batch, the next
retrain succeeds and rows in = rows trained on + quarantined + dropped by prepare's
documented rule. The corpus runs as the command a user runs, in its own process: tests and
bench share helpers through `retrain.testing`, never by importing each other.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.integration]

# Issue 25's faults, each of which once broke or silently changed every later retrain.
ISSUE_25 = {
    "column_order",
    "id_email",
    "id_newline",
    "id_collision",
    "nul_bytes",
    "fifo",
    "field_1mb",
    "params_typo",
    "predict_out_pinned",
    "predict_flow_input",
    "simulate_rows",
    "gate_override",
    "serve_port",
    "serve_host",
    "docs_token",
    "json_true",
}  # fmt: skip (and deployment_run_bogus: a slow case, it needs a Prefect server)
SAID = {  # issue 12's ingest faults: what the run said
    "partial_file": ["slow.csv pending", "cut.csv rejected"],
    "dangling_link": ["a-link.csv refused"],
    "duplicate": ["a-resent.csv duplicate"],
    "remote_down": ["NOT pushed"],
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("faults") / "faults.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.faults", "--quick", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dict(json.loads(out.read_text())["data"])


def test_every_fast_fault_case_holds(outcomes: dict[str, dict[str, Any]]) -> None:
    assert ISSUE_25 <= set(outcomes), sorted(ISSUE_25 - set(outcomes))
    broken = {
        name: f"{o['happened']}; {o['problems']}" for name, o in outcomes.items() if not o["held"]
    }
    assert not broken, broken
    assert sum(o["lost"] for o in outcomes.values()) == 0


@pytest.mark.parametrize("name", sorted(SAID))
def test_an_ingest_fault_stores_or_quarantines_every_landed_row(
    outcomes: dict[str, dict[str, Any]], name: str
) -> None:
    o = outcomes[name]
    assert o["rows_in"] > 0 and o["kept"] + o["quarantined"] == o["rows_in"]
    assert all(words in o["happened"] for words in SAID[name]), o["happened"]
    if name == "remote_down":
        assert o["quarantined"] > 0  # the rejected batch reached the remote too


def test_the_fault_table_in_results_is_the_corpus(outcomes: dict[str, dict[str, Any]]) -> None:
    """bench/RESULTS.md's fault section (written by a full run) lists every case run here."""
    text = (REPO / "bench" / "RESULTS.md").read_text()
    section = text.split("<!-- faults:begin", 1)[1].split("<!-- faults:end -->", 1)[0]
    rows = {line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ")}
    assert set(outcomes) <= rows, sorted(set(outcomes) - rows)
    assert "**NOT HELD**" not in section
