"""Every HTML report the pipeline, the monitor and `check-pr` write, opened in headless
Chromium with the network refused: what rendered, not only that the file exists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from retrain.orchestration import browser
from tests.conftest import copy_repo, pipeline_env

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module", autouse=True)
def needs_chromium() -> None:
    if browser.chromium() is None:
        message = "no chromium on PATH: apt-get install -y chromium (.ci/run does)"
        if os.environ.get("RETRAIN_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)


def _visible(dom: str) -> str:
    """The DOM without script and style bodies (vega's own source mentions 'mark-line')."""
    dom = re.sub(r"<script\b.*?</script>", "", dom, flags=re.S | re.I)
    return re.sub(r"<style\b.*?</style>", "", dom, flags=re.S | re.I)


def plot_marks(page: Path) -> dict[str, Counter[str]]:
    """Each vega-embed plot of a `dvc plots` page -> the marks drawn in its SVG."""
    dom = _visible(browser.dump_dom(page))
    parts = re.split(r'<div id="([^"]+)" class="vega-embed', dom)
    plots = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        svg = re.search(r'<svg[^>]*class="marks".*?</svg>', body, flags=re.S)
        drawn = (
            re.findall(r'<g class="mark-(\w+)[^"]*"[^>]*>\s*<(?:path|line|rect|text)', svg[0])
            if svg
            else []
        )
        plots[name] = Counter(drawn)
    return plots


def assert_plots_drawn(page: Path, expected: set[str]) -> None:
    plots = plot_marks(page)
    assert expected <= set(plots), (page, sorted(plots))
    for name, marks in plots.items():
        assert marks, f"{page}: plot {name} drew nothing"
    # The curves themselves, not only axes: each expected plot has a line, symbol or rect.
    for name in expected:
        assert {"line", "symbol", "rect"} & set(plots[name]), (name, plots[name])


def assert_data_docs_rendered(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 3, pages  # index, the suite, at least one validation
    for page in pages:
        raw = browser.dump_dom(page)
        dom = _visible(raw)
        scripts = re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", raw)
        sheets = re.findall(r"<link[^>]*stylesheet[^>]*\shref=\"([^\"]+)\"", raw)
        loaded = scripts + sheets  # (GE's favicon link is one folder off on nested pages)
        assert not [u for u in loaded if u.startswith(("http:", "https:", "//"))], page
        assert len(scripts) >= 5 and len(sheets) >= 4, page
        for rel in loaded:  # what the page loads is there, beside it
            assert (page.parent / rel).resolve().is_file(), (page, rel)
        # GE's logo is the site's own, and the validation run has a name (issue 28).
        images = re.findall(r"<img[^>]*\ssrc=\"([^\"]+)\"", raw)
        assert images and not [u for u in images if "://" in u], (page, images)
        assert "__none__" not in dom, page
        # bootstrap-table (jQuery + Bootstrap) turned the page's JSON into table rows.
        assert "fixed-table-body" in dom and 'data-index="0"' in dom, page
        if page.name == "index.html":
            table = re.search(r"<table [^>]*validation-results-table.*?</table>", dom, re.S)
            assert table and re.search(r'<tr[^>]*data-index="0"', table[0]), page
        if page.relative_to(site).parts[0] == "validations":
            assert dom.count("fa-check-circle") >= 10, page  # one status icon per expectation


def assert_evidently_rendered(page: Path, columns: list[str]) -> None:
    dom = _visible(browser.dump_dom(page, budget_ms=15000))
    assert dom.count('class="main-svg"') >= 3, page  # plotly drew its charts
    for column in columns:
        assert column in dom, (page, column)


def test_pipeline_monitor_and_pr_reports_render_offline(trained_repo, tmp_path):
    from retrain.config import load_params_at
    from retrain.data.simulate import Drift, simulate
    from retrain.monitoring.drift import batch_drift

    repo = copy_repo(trained_repo, tmp_path / "repo")
    env = pipeline_env()

    # The pipeline: DVC plots (as the retrain flow and `make plots` render them) ...
    out = tmp_path / "plots"
    subprocess.run(
        [sys.executable, "-m", "dvc", "plots", "show", "-o", str(out)],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
    )
    assert_plots_drawn(out / "index.html", {"roc", "precision_recall", "calibration"})
    # ... the Data Docs of the validate stage, the model card ...
    assert_data_docs_rendered(repo / "reports" / "validation" / "data_docs")
    card = _visible(browser.dump_dom(repo / "reports" / "model_card.html"))
    assert card.count("<tr") > 10 and "roc_auc" in card

    # The monitor's Evidently report on a drifted batch (what check_drift writes).
    params = load_params_at(repo)
    table = pd.read_csv(repo / "data" / "raw" / "telco_churn.csv")
    mix = Drift("mix", "contract", 0.9, "Month-to-month")
    batch = simulate(table, params.dataset, n_batches=1, batch_size=300, seed=4, drift=mix)[0]
    drift_html = tmp_path / "monitor" / "drift.html"
    summary = batch_drift(batch, params, drift_html)
    assert_evidently_rendered(drift_html, summary["drifted_features"][:3])

    # check-pr on a head that shifts the data: Data Docs, drift report and plots diff.
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=repo, check=True)
    subprocess.run([*git, "checkout", "-qb", "pr"], cwd=repo, check=True)
    raw = repo / "data" / "raw" / "telco_churn.csv"
    shifted = pd.read_csv(raw)
    shifted["monthly_charges"] = (shifted["monthly_charges"] * 1.3).round(2)
    shifted.to_csv(raw, index=False, lineterminator="\n")
    dvc_commit = [sys.executable, "-m", "dvc", "commit", "-f", "-q", "data.dvc"]
    subprocess.run(dvc_commit, cwd=repo, env=env, check=True, capture_output=True)
    subprocess.run([*git, "commit", "-qam", "shifted charges"], cwd=repo, check=True)
    proc = subprocess.run(
        [sys.executable, "-m", "retrain.cli", "check-pr", "--base", "main", "--no-repro"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    pr = repo / "reports" / "pr"
    assert (pr / "report.md").exists(), proc.stdout + proc.stderr
    assert_plots_drawn(pr / "plots" / "index.html", {"calibration"})
    assert_data_docs_rendered(pr / "data_docs")
    assert_evidently_rendered(pr / "drift.html", ["monthly_charges"])


def test_the_browser_really_is_offline(tmp_path):
    """The control: the same page loading vega from its CDN (DVC's default) draws nothing."""
    page = tmp_path / "cdn.html"
    spec = '{"mark": "point", "data": {"values": [{"a": 1}]}, "encoding": {"x": {"field": "a"}}}'
    body = f'<div id="p"><script>vegaEmbed("#p", {spec}, {{renderer: "svg"}});</script></div>'
    page.write_text(
        '<html><head><script src="https://cdn.jsdelivr.net/npm/vega@5"></script>'
        '<script src="https://cdn.jsdelivr.net/npm/vega-lite@5"></script>'
        '<script src="https://cdn.jsdelivr.net/npm/vega-embed@6"></script></head>'
        f"<body>{body}</body></html>"
    )
    assert "mark-symbol" not in _visible(browser.dump_dom(page))
    # ... and with the vendored scripts (localise_tree rewrites the CDN links) it draws.
    from retrain.assets import localise_tree

    localise_tree(tmp_path)
    assert "mark-symbol" in _visible(browser.dump_dom(page))
