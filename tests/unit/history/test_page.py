"""The model history page built from three recorded retrains and two monitored batches,
opened in headless Chromium with the network refused: its rows and chart marks are drawn."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from retrain.config import load_params_at
from retrain.history.page import drift_points, write_page
from retrain.orchestration import browser


def monitor_reports(folder: Path) -> None:
    """Two batches as the monitor flow writes them (paths.monitor_dir/<batch>/drift.json)."""
    for i, (batch, drifted) in enumerate([("b1.csv", ["tenure"]), ("b2.csv", [])]):
        features = {
            col: {"column": col, "score": 0.01 + i + j, "drifted": col in drifted}
            for j, col in enumerate(["tenure", "contract"])
        }
        out = folder / Path(batch).stem / "drift.json"
        out.parent.mkdir(parents=True)
        out.write_text(json.dumps({"batch": batch, "features": features, "share_drifted": i}))
        os.utime(out, (time.time() + i, time.time() + i))  # b1 checked before b2


def test_drift_points_are_per_batch_oldest_first(tmp_path):
    monitor_reports(tmp_path)
    points = drift_points(tmp_path)
    assert [p.name for p in points] == ["b1.csv", "b2.csv"]
    assert points[0].columns == {"tenure": (0.01, True), "contract": (1.01, False)}


@pytest.mark.browser
def test_history_page_opens_offline_with_every_run_and_its_marks(
    three_runs, tmp_path, monkeypatch
):
    if browser.chromium() is None:
        pytest.skip("no chromium on PATH: apt-get install -y chromium")
    monkeypatch.setenv("PREFECT_UI_URL", "http://127.0.0.1:4200/")
    params = load_params_at(three_runs.repo)
    monitor = tmp_path / "monitor"
    monitor_reports(monitor)
    out = tmp_path / "history.html"
    paths = params.paths.model_copy(update={"monitor_dir": monitor, "model_history": out})
    page = write_page(three_runs.repo, params.model_copy(update={"paths": paths}))
    assert page == out
    dom = browser.dump_dom(page)
    assert not re.search(r"<(script|link)\b", dom)  # nothing to load: it opens offline
    runs = re.findall(r'<tr class="run[^"]*" data-run="([^"]+)"', dom)
    assert runs == [r["run_id"] for r in three_runs.records]
    # The metric chart: five series (ours, two baselines, ours and the champion on the
    # holdout), one point per run that has the number (no champion before the first run).
    chart = re.search(r'<svg class="chart".*?</svg>', dom, re.S)
    assert chart
    points = re.findall(r'<circle class="point" data-series="([^"]+)"', chart[0])
    assert len(points) == 3 * 4 + 2, points
    lines = re.findall(r'<polyline class="line" data-series="([^"]+)"', chart[0])
    assert lines == [
        "ours (test)",
        "logreg (test)",
        "lightgbm (test)",
        "ours (holdout)",
        "champion (holdout)",
    ]
    # Drift over time: a row per column, a cell per batch; tenure drifted on b1 only.
    tenure = re.search(r"<tr class=\"drift\" data-column=\"tenure\">(.*?)</tr>", dom, re.S)
    assert tenure and re.findall(r"<td[^>]*>([^<]*)</td>", tenure[1]) == [
        "tenure",
        "0.0100 drifted",
        "1.0100",
    ]
    assert "rejected: AUC 0.82" in dom
    # The drift retrain links back to the monitor run that started it, in the Prefect UI.
    link = re.search(r'<a href="([^"]+)">drift on b1.csv', dom)
    assert link and link[1] == "http://127.0.0.1:4200/runs/flow-run/abc-123"
