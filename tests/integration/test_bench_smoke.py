"""Smoke test of bench/: the cheap benchmarks run in --quick mode and report ratios.

It checks that they run and say what they measured, never how fast: speed targets belong
in the benchmarks' own output (bench/RESULTS.md), not in a timed test on a shared machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.bench]

CHEAP = ("training", "validation", "drift", "tuning", "quality")
RATIO = re.compile(r"\b\d+\.\d\dx\b")


def test_quick_benches_print_ratios_and_write_results(tmp_path, raw_csv):
    out = tmp_path / "RESULTS.md"
    env = dict(os.environ, GX_ANALYTICS_ENABLED="false")
    proc = subprocess.run(
        # --jobs 2: bench 7's two quick splits (one per table) run in worker processes.
        [sys.executable, "-m", "bench.run_all", "--quick", "--jobs", "2", "--only", *CHEAP]
        + ["--output", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "FAILED" not in proc.stdout, proc.stdout[-3000:]
    titles = (
        "1. Training throughput",
        "2. Validation",
        "3. Drift",
        "5. Tuning",
        "7. Model quality",
    )
    for title in titles:
        section = proc.stdout.split(f"== {title}", 1)[1].split("\n== ", 1)[0]
        if title.startswith(("1.", "2.", "3.", "5.")):
            assert RATIO.search(section), f"no ratio printed by {title!r}:\n{section}"
    results = out.read_text()
    assert "## Goals" in results and "--quick" in results
    # Every goal gets a verdict; at quick sizes the drift goal says it was not judged.
    verdicts = re.findall(r"\*\*(MET|MISSED|NOT MEASURED)\*\* \|", results)
    assert len(verdicts) >= 6
    assert "3. Drift" in results and "quick sizes: goal not judged" in results


def test_quick_bench_7e_compares_the_train_keys_with_the_default_on_one_table():
    # Issue 27's bag of fold models against the default, as the lead runs it (one quick split).
    env = dict(os.environ, GX_ANALYTICS_ENABLED="false")
    proc = subprocess.run(
        [sys.executable, "-m", "bench.quality", "--quick", "--train", "bag_folds=2"]
        + ["--tables", "telco_churn"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    section = proc.stdout.split("== 7e. train bag_folds=2 vs as shipped", 1)[1]
    assert "telco_churn/train:bag_folds=2 seed 42" in proc.stdout
    assert RATIO.search(section), section  # the cost ratio
    assert "train bag_folds=2: all bench 7 tables together (telco_churn)" in section
