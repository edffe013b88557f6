"""`retrain compare A B`: two recorded runs side by side (metrics, params that differ,
ROC/PR curves, slice metrics), read from their record commits."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from retrain.history.compare import flatten
from retrain.orchestration import browser
from tests.conftest import pipeline_env


def test_flatten_gives_dotted_keys():
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": "x"}) == {"a.b": 1, "a.c": [1, 2], "d": "x"}


def compare(repo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "retrain.cli", "compare", *args],
        cwd=repo,
        env=pipeline_env(),
        capture_output=True,
        text=True,
    )


def row(out: str, name: str) -> list[str]:
    line = next(ln for ln in out.splitlines() if ln.strip().startswith(name + " "))
    return line.split()[-2:]


def test_compare_prints_both_runs_side_by_side(three_runs, tmp_path):
    first, second, _ = three_runs.records
    page = tmp_path / "compare.html"
    out = compare(three_runs.repo, first["run_id"], f"run/{second['run_id']}", "--html", str(page))
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert first["run_id"] in text and second["run_id"] in text
    assert row(text, "ours roc_auc") == ["0.8000", "0.8400"]
    assert row(text, "logreg roc_auc") == ["0.7900", "0.8300"]
    assert row(text, "gate decision") == ["first", "promoted"]
    assert row(text, "tuned.lr") == ["0.8000", "0.8400"]  # a param that differs
    assert row(text, "contract=One year") == ["0.7500", "0.7900"]  # the slice metric
    assert "seed" not in text  # params that are equal are not listed
    assert page.is_file()
    if browser.chromium() is None:
        pytest.skip("no chromium on PATH: apt-get install -y chromium")
    dom = browser.dump_dom(page)
    assert not re.search(r"<(script|link)\b", dom)
    # ROC and PR, each with ours and both baselines for A and for B: six lines, five points.
    charts = re.findall(r'<svg class="chart".*?</svg>', dom, re.S)
    assert len(charts) == 2
    for chart in charts:
        lines = re.findall(r'<polyline class="line" data-series="([^"]+)"', chart)
        assert sorted(lines) == sorted(
            f"{m} {s}" for m in ("ours", "logreg", "lightgbm") for s in "AB"
        ), lines
        assert len(re.findall(r'<circle class="point"', chart)) == 6 * 5
    slices = re.search(r'<table id="slices">.*?</table>', dom, re.S)
    assert slices and "0.7500" in slices[0] and "0.7900" in slices[0]


def test_compare_names_an_unknown_run(three_runs):
    out = compare(three_runs.repo, "nope", three_runs.records[0]["run_id"])
    assert out.returncode == 1
    assert "no record run/nope" in out.stderr
