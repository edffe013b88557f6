"""The report stage in the real pipeline: the session's `dvc repro` on the small config
(`trained_repo`, read-only here), read back."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from retrain.analysis.card import SECTIONS
from tests.integration.test_pipeline import _env, dvc

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def repo(trained_repo: Path) -> Path:
    """Read only: every test here leaves the repository as it found it."""
    return trained_repo


def _json(repo: Path, rel: str) -> dict:
    return json.loads((repo / rel).read_text())


def _f(x: float) -> str:
    return f"{x:.4f}"


def test_model_card_has_every_section_and_the_runs_numbers(repo):
    md = (repo / "reports/model_card.md").read_text()
    html = (repo / "reports/model_card.html").read_text()
    headings = re.findall(r"^## (.+)$", md, re.M)
    assert headings == list(SECTIONS)
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in html

    evaluation = _json(repo, "metrics/evaluate.json")
    train = _json(repo, "models/model/model_card.json")
    calibration = _json(repo, "metrics/calibration.json")
    slices = _json(repo, "metrics/slices.json")
    attributions = _json(repo, "metrics/attributions.json")
    pin = yaml.safe_load((repo / "data.dvc").read_text())["outs"][0]["md5"]
    commit = train["git_revision"].removesuffix("-dirty")
    top = min(attributions["columns"], key=lambda c: attributions["columns"][c]["rank"])
    expected = [
        pin,  # data version and hash
        commit,
        f"git checkout {commit} && dvc pull && dvc repro",
        *(
            f"`{k}` | {v:.6g}" if isinstance(v, float) else f"`{k}` | {v}"
            for k, v in train["params"].items()
        ),  # training params
        *(_f(evaluation[m]["roc_auc"]) for m in ("tabm", "logreg", "lightgbm")),  # + baselines
        _f(evaluation["tabm"]["ece"]),
        _f(evaluation["threshold"]),
        f"T = {calibration['temperature']:.4f}",
        _f(calibration["test"]["before"]["log_loss"]),
        f"| `{top}` | {_f(attributions['columns'][top]['mean_abs'])} |",
        "retrain explain --row-id <customer_id>",
    ]
    for column, values in slices["slices"].items():
        expected.append(f"### `{column}`")
        for value, entry in values.items():
            expected.append(f"| `{value}` | {entry['n']} | {entry['positives']} |")
    for text in expected:
        assert text in md, text
    assert "Known limits" in md and md.count("\n- ") >= 4
    # The HTML is the same card: its numbers too.
    for text in (pin, _f(evaluation["tabm"]["roc_auc"]), f"<code>{top}</code>"):
        assert text in html, text


def test_slice_counts_add_up_to_the_test_split(repo):
    slices = _json(repo, "metrics/slices.json")
    n_test = _json(repo, "metrics/evaluate.json")["n_test"]
    declared = yaml.safe_load((repo / "params.yaml").read_text())["report"]["slices"]
    assert sorted(slices["slices"]) == sorted(declared)
    assert slices["n"] == n_test
    for column, values in slices["slices"].items():
        assert sum(v["n"] for v in values.values()) == n_test, column
        assert sum(v["positives"] for v in values.values()) == slices["positives"], column


def test_the_gate_judges_the_reports_slices(repo):
    """On the run's own test split, the promotion gate's slice table is the report's: the
    same names, counts, small flags and ROC AUCs (one slicing engine, one metrics module)."""
    from retrain.analysis.slices import SliceRule
    from retrain.config import load_params_at
    from retrain.data.clean import targets
    from retrain.models.predictor import Predictor
    from retrain.registry.gate import decide

    params = load_params_at(repo)
    cfg = params.registry.gate
    test = pd.read_parquet(params.paths.test)
    scores = Predictor(params.paths.preprocessor, params.paths.onnx_model).predict_proba(test)
    result = decide(
        targets(test), scores, scores, test[cfg.slices], cfg, rule=SliceRule.from_params(params)
    )
    report = _json(repo, "metrics/slices.json")
    assert result.slices and {s.column for s in result.slices} == set(cfg.slices)
    for s in result.slices:
        entry = report["slices"][s.column][s.value]
        assert entry["name"] == s.name
        assert (entry["n"], entry["positives"], entry["small"]) == (s.rows, s.positives, s.small)
        assert s.challenger == (entry["metrics"] or {}).get("roc_auc"), s.name
    assert result.challenger["roc_auc"] == report["overall"]["roc_auc"]


def test_dvc_plots_show_calibration_next_to_roc_and_pr(repo, tmp_path):
    dvc(repo, "plots", "show", "-o", str(tmp_path / "dvc_plots"))
    page = (tmp_path / "dvc_plots" / "index.html").read_text()
    for title in (
        "ROC on the test split",
        "Precision-recall",
        "before and after temperature scaling",
        "Global attributions",
    ):
        assert title in page, title
    metrics = dvc(repo, "metrics", "show", "--json").stdout
    assert "metrics/slices.json" in metrics


def _explain(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "retrain.cli", "explain", *args]
    return subprocess.run(cmd, cwd=repo, env=_env(), capture_output=True, text=True)


def test_explain_a_test_row(repo):
    predictions = pd.read_parquet(repo / "reports/evaluate/test_predictions.parquet")
    row_id, served = predictions["customer_id"].iloc[7], predictions["tabm"].iloc[7]
    out = _explain(repo, "--row-id", str(row_id), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    features = yaml.safe_load((repo / "params.yaml").read_text())["dataset"]
    assert result["split"] == "test"
    assert sorted(c["column"] for c in result["contributions"]) == sorted(
        features["numeric"] + features["categorical"]
    )
    assert result["score"] == pytest.approx(served, abs=1e-4)  # the served score
    logit = math.log(result["score"] / (1 - result["score"]))
    base = math.log(result["baseline_score"] / (1 - result["baseline_score"]))
    total = sum(c["attribution"] for c in result["contributions"])
    assert total == pytest.approx(logit - base, abs=abs(result["delta"]) + 1e-3)

    text = _explain(repo, "--row-id", str(row_id), "--top", "3")
    assert text.returncode == 0 and len(text.stdout.strip().splitlines()) == 5

    missing = _explain(repo, "--row-id", "no-such-customer")
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        "error: customer_id 'no-such-customer' not found in the prepared splits "
        "(data/prepared/train.parquet, data/prepared/val.parquet, data/prepared/test.parquet)"
    )
