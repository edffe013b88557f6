"""The fault corpus (bench/faults.py, issues 12 and 25) on its fast cases, one test each.

Each case builds its own scratch repo (one base build, copied per case, each copy with its
own DVC remote) and must hold: for a batch, the next retrain succeeds and rows in = rows
trained on + quarantined + dropped by prepare's documented rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import faults

pytestmark = [pytest.mark.slow, pytest.mark.integration]

FAST = [c for c in faults.CASES if c.fast]


def _param(case: faults.Case) -> object:
    return pytest.param(case, id=case.name)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.mark.parametrize("case", [_param(c) for c in FAST])
def test_fault_case_holds(case: faults.Case, workdir: Path, raw_csv: Path) -> None:
    out = faults.run_case(case, workdir)
    assert faults.held(out), f"{case.name}: {out.happened}; {out.problems}"
    if case.name in SAID:  # issue 12's ingest faults: every landed row stored or quarantined
        assert out.rows_in > 0 and out.kept + out.quarantined == out.rows_in
        assert all(words in out.happened for words in SAID[case.name]), out.happened
    if case.name == "remote_down":
        assert out.quarantined > 0  # the rejected batch reached the remote too


SAID = {
    "partial_file": ["slow.csv pending", "cut.csv rejected"],
    "dangling_link": ["a-link.csv refused"],
    "duplicate": ["a-resent.csv duplicate"],
    "remote_down": ["NOT pushed"],
}


def test_the_fault_table_is_written_between_its_markers(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\n## 1. Training\n\ntext\n")
    section = faults.Section("F", "Faults", ["case", "verdict"], [["fifo", "held"]])
    faults.write_results(results, section)
    faults.write_results(results, section)  # a rerun replaces the table, keeps the rest
    text = results.read_text()
    assert text.count(faults.BEGIN) == 1 and text.startswith("# Results\n\n## 1. Training")
    assert "| fifo | held |" in text
