"""`dvc plots diff` and `dvc metrics diff` between two run tags: each record's commit holds
its plot data (plots/ is tracked, cache: false), so both revisions are drawn."""

from __future__ import annotations

import json
import re
from collections import defaultdict

import pytest

from retrain.orchestration import browser
from tests.unit.history.conftest import dvc, model_key


def tags(runs) -> tuple[str, str]:
    first, second, _ = runs.records
    return f"run/{first['run_id']}", f"run/{second['run_id']}"


def test_plots_diff_has_both_runs_data(three_runs):
    a, b = tags(three_runs)
    out = dvc(three_runs.repo, "plots", "diff", a, b, "--json")
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert "errors" not in shown, shown.get("errors")  # DVC's "failed to load some plots"
    (roc,) = shown["data"]["roc"]
    assert roc["revisions"] == [a, b]
    values = roc["content"]["data"]["values"]
    assert {v["rev"] for v in values} == {a, b}
    # The two runs' curves differ (run 2's model is better): the data is each run's own.
    at = {(v["rev"], v["field"], v["fpr"]): v["dvc_inferred_y_value"] for v in values}
    assert at[(a, model_key(), 0.25)] < at[(b, model_key(), 0.25)]


@pytest.mark.browser
def test_plots_diff_page_draws_both_runs_offline(three_runs, tmp_path):
    if browser.chromium() is None:
        pytest.skip("no chromium on PATH: apt-get install -y chromium")
    a, b = tags(three_runs)
    out = dvc(three_runs.repo, "plots", "diff", a, b, "-o", str(tmp_path / "diff"))
    assert out.returncode == 0, out.stderr
    page = tmp_path / "diff" / "index.html"
    assert "failed to load" not in page.read_text()
    dom = re.sub(r"<script\b.*?</script>", "", browser.dump_dom(page), flags=re.S)
    roc = re.split(r'<div id="([^"]+)" class="vega-embed', dom)
    body = roc[roc.index("roc") + 1]
    lines = re.findall(
        r'aria-label="[^"]*rev: ([^;]+);[^"]*?field: ([^;"]+)[^"]*"[^>]*"line mark"', body
    )
    fields = defaultdict(set)
    for rev, field in lines:
        fields[rev].add(field)
    # Ours and both baselines, drawn for each run.
    assert set(fields) == {a, b} and all(len(f) == 3 for f in fields.values()), fields


def test_metrics_diff_shows_the_change(three_runs):
    a, b = tags(three_runs)
    out = dvc(three_runs.repo, "metrics", "diff", a, b, "--json")
    assert out.returncode == 0, out.stderr
    diff = json.loads(out.stdout)["metrics/evaluate.json"]
    ours = diff[f"{model_key()}.roc_auc"]
    assert (ours["old"], ours["new"]) == (0.80, 0.84)
    assert diff["logreg.roc_auc"]["diff"] == pytest.approx(0.04)
