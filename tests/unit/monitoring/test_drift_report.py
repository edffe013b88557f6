"""The drift pages people open: Evidently's report starts on the gate's verdict and the drifted
columns, the model's scores carry a readable name, and before any batch the page says so in
the reports' style. Opened in headless Chromium with the network refused."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain.config import DatasetSchema, DriftParams
from retrain.monitoring.drift import compute_drift
from retrain.orchestration import browser

SCHEMA = DatasetSchema(
    name="t",
    suite=Path("s.json"),
    target="churn",
    positive_class=1,
    numeric=["tenure", "charges"],
    categorical=["contract"],
)
CFG = DriftParams(max_share_drifted=0.25, num_threshold=0.3)  # noise stays under 0.3


def _frame(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "tenure": rng.normal(30, 10, n),
            "charges": rng.normal(70 + shift, 10, n),
            "contract": rng.choice(["month", "year"], n),
            "churn": rng.integers(0, 2, n),
        }
    )


@pytest.fixture(scope="module")
def drift_page(tmp_path_factory) -> tuple[Path, dict]:
    rng = np.random.default_rng(0)
    ref, cur = _frame(rng, 400, 0.0), _frame(rng, 200, 25.0)
    page = tmp_path_factory.mktemp("drift") / "drift.html"
    report = compute_drift(
        ref,
        cur,
        SCHEMA,
        CFG,
        reference_scores=rng.uniform(0, 1, 400),
        current_scores=rng.uniform(0, 1, 200),
        html=page,
    )
    return page, report.to_dict()


def test_the_html_opens_on_the_verdict_and_the_drifted_columns(drift_page):
    page, report = drift_page
    assert report["drifted_features"] == ["charges"]  # the crafted shift, and only it
    text = page.read_text()
    body = text[text.index("<body>") :]
    summary = re.search(r'<section id="drift-summary">.*?</section>', body, re.S)
    assert summary and body.index(summary[0]) == len("<body>")  # before Evidently's root div
    block = summary[0]
    assert "Drift gate: tripped" in block and "1 of 3 feature columns drifted" in block
    rows = re.findall(r"<tr><td>([^<]+)</td>", block)
    assert rows[0] == "charges"  # the drifted column first
    assert "model score" in rows and "__score__" not in text


@pytest.mark.slow
@pytest.mark.browser
def test_the_summary_is_the_first_thing_drawn(drift_page):
    if browser.chromium() is None:
        pytest.skip("no chromium on PATH: apt-get install -y chromium (.ci/run does)")
    page, _ = drift_page
    dom = browser.dump_dom(page, budget_ms=15000)
    body = re.sub(r"<(script|style)\b.*?</\1>", "", dom[dom.index("<body") :], flags=re.S)
    words = re.sub(r"<[^>]+>", " ", body).split()
    assert " ".join(words[:3]) == "Drift gate: tripped", words[:20]
    assert dom.count('class="main-svg"') >= 3  # Evidently still drew its charts below
    assert "__score__" not in dom and "model score" in dom


@pytest.mark.slow
@pytest.mark.browser
def test_no_batch_page_is_styled_and_says_so(tmp_path):
    if browser.chromium() is None:
        pytest.skip("no chromium on PATH: apt-get install -y chromium (.ci/run does)")
    from retrain.config import load_params_at
    from retrain.stages import drift

    params = load_params_at(Path(__file__).resolve().parents[3])
    paths = params.paths.model_copy(
        update={
            "batches": tmp_path / "none",
            "drift_html": tmp_path / "drift.html",
            "drift_report": tmp_path / "drift.json",
        }
    )
    assert drift.run(params.model_copy(update={"paths": paths}))["batch"] is None
    dom = browser.dump_dom(tmp_path / "drift.html")
    assert "<style>" in dom and "font-family: system-ui" in dom  # the reports' stylesheet
    assert "<h1>Drift report: no batch ingested yet</h1>" in dom


def test_a_calm_batch_summary_says_passed_and_lists_no_drifted_column():
    from retrain.monitoring.drift import ColumnDrift, DriftReport, gate, summary_html

    calm = DriftReport(
        1000,
        200,
        [ColumnDrift(c, "numeric", "wasserstein", 0.01, 0.1, False) for c in ("b", "a")],
    )
    block = summary_html(calm, gate(calm, CFG))
    assert "<h1>Drift gate: passed</h1>" in block
    assert "0 of 2 feature columns drifted (none)" in block
    assert re.findall(r"<tr><td>([^<]+)</td>", block) == ["a", "b"]
