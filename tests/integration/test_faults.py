"""The fault table (bench/faults.py, issue 12) on its cheap faults: no landed row is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_quick_fault_table_loses_no_row(tmp_path, raw_csv):
    out = tmp_path / "faults.json"
    env = dict(os.environ, GX_ANALYTICS_ENABLED="false")
    proc = subprocess.run(
        [sys.executable, "-m", "bench.faults", "--quick", "--json", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "== F. Faults" in proc.stdout and "lost" in proc.stdout
    table = json.loads(out.read_text())["data"]
    assert set(table) == {"partial_file", "dangling_link", "duplicate", "remote_down"}
    for fault, row in table.items():
        assert row["rows_in"] > 0, fault
        assert row["lost"] == 0 and row["kept"] + row["quarantined"] == row["rows_in"], row
    assert "slow.csv pending" in table["partial_file"]["happened"]
    assert "cut.csv rejected" in table["partial_file"]["happened"]
    assert "a-link.csv refused" in table["dangling_link"]["happened"]
    assert "a-resent.csv duplicate" in table["duplicate"]["happened"]
    assert "NOT pushed" in table["remote_down"]["happened"]
    assert table["remote_down"]["quarantined"] > 0  # the rejected batch reached the remote too
