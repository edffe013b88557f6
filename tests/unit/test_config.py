from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from retrain.config import ConfigError, load_params, parse_params
from tests.conftest import REPO


def test_params_yaml_loads():
    params = load_params(REPO / "params.yaml")  # whichever table the checkout configures
    assert params.dataset.target not in params.dataset.features
    assert params.validate_.partial_unexpected_count >= 1
    assert set(params.tune.search_space) <= set(params.model.model_dump())


def test_typo_is_an_error_naming_the_key(default_params_raw):
    raw = copy.deepcopy(default_params_raw)
    raw["tune"]["n_trail"] = 5
    with pytest.raises(ConfigError, match=r"tune\.n_trail: unknown key"):
        parse_params(raw)


def test_bad_value_names_the_key(default_params_raw):
    raw = copy.deepcopy(default_params_raw)
    raw["prepare"]["test_size"] = 1.5
    with pytest.raises(ConfigError, match=r"prepare\.test_size"):
        parse_params(raw)


def test_unknown_search_dimension_is_rejected(default_params_raw):
    raw = copy.deepcopy(default_params_raw)
    raw["tune"]["search_space"]["momentum"] = {"type": "float", "low": 0.1, "high": 0.9}
    with pytest.raises(ConfigError, match="momentum"):
        parse_params(raw)


def test_missing_section_names_it(default_params_raw):
    raw = copy.deepcopy(default_params_raw)
    del raw["train"]
    with pytest.raises(ConfigError, match=r"params.yaml: train: Field required"):
        parse_params(raw)


def test_missing_file_and_bad_yaml(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)


def test_column_declared_twice(default_params_raw):
    raw = copy.deepcopy(default_params_raw)
    raw["dataset"]["categorical"].append("tenure")
    with pytest.raises(ConfigError, match="tenure"):
        parse_params(raw)


def test_dvc_yaml_templates_only_known_params_keys(default_params_raw):
    # A stale ${paths.x} in dvc.yaml fails only at `dvc repro`; catch it here instead.
    import re

    text = (REPO / "dvc.yaml").read_text()
    for ref in re.findall(r"\$\{([\w.]+)\}", text):
        node = default_params_raw
        for part in ref.split("."):
            assert part in node, f"dvc.yaml references unknown params key {ref}"
            node = node[part]
    stages = yaml.safe_load(text)["stages"]
    for name, stage in stages.items():
        assert stage["cmd"] == f"python -m retrain.stages.{name}"
        assert (REPO / "src" / "retrain" / "stages" / f"{name}.py").exists()
    # Top-level plot definitions name files literally; they must be the files params writes.
    plotted = {f for p in yaml.safe_load(text)["plots"] for spec in p.values() for f in spec["y"]}
    paths = default_params_raw["paths"]
    keys = (
        "roc_plot",
        "pr_plot",
        "calibration_plot",
        "confusion_plot",
        "calibration_scaled_plot",
        "attributions_plot",
    )
    assert plotted == {paths[k] for k in keys}


def test_id_column_may_not_be_a_feature(default_params_raw):
    raw = copy.deepcopy(default_params_raw)
    raw["dataset"]["categorical"].append(raw["dataset"]["id_column"])
    with pytest.raises(ConfigError, match=r"dataset: .*id_column 'customer_id'.*never a model"):
        parse_params(raw)


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("dataset", "pii_allow", ["e_mail"], r"pii_allow names column\(s\) \['e_mail'\]"),
        ("report", "slices", ["contract", "region"], r"report.slices .*\['region'\]"),
        ("report", "slice", ["contract"], r"report\.slice: unknown key"),
        ("report", "baseline", "median", r"report\.baseline"),
    ],
)
def test_report_and_pii_keys_are_checked(default_params_raw, section, key, value, message):
    raw = copy.deepcopy(default_params_raw)
    raw[section][key] = value
    with pytest.raises(ConfigError, match=message):
        parse_params(raw)


def test_gate_slices_must_be_features(default_params_raw):
    raw = copy.deepcopy(default_params_raw)
    raw["registry"]["gate"]["slices"] = ["contract", "region"]
    with pytest.raises(ConfigError, match=r"registry.gate.slices names \['region'\]"):
        parse_params(raw)


def test_gate_metric_must_be_threshold_free(default_params_raw):
    raw = copy.deepcopy(default_params_raw)
    raw["registry"]["gate"]["metric"] = "f1"
    with pytest.raises(ConfigError, match=r"registry\.gate\.metric"):
        parse_params(raw)


def test_high_cardinality_columns_are_categorical_and_not_warned_about(default_params_raw):
    """dataset.high_cardinality names categorical columns (an error naming the key
    otherwise); a numeric-coded one with many levels is encoded, not one-hot, so the check
    of params against the data does not warn about one-hot columns for it (issue 27)."""
    import pandas as pd

    from retrain.validation.config_check import check_schema

    raw = copy.deepcopy(default_params_raw)
    raw["dataset"]["high_cardinality"] = ["tenure"]
    with pytest.raises(ConfigError, match=r"high_cardinality names \['tenure'\], which are not"):
        parse_params(raw)
    schema = parse_params(default_params_raw).dataset
    table = pd.DataFrame(
        {c: [1.0] * 60 if c in schema.numeric else ["x"] * 60 for c in schema.columns}
    )
    table["contract"] = range(60)  # a numeric code with 60 levels
    (warning,) = check_schema(schema, [("t.csv", table)], "params.yaml", require_target=False)
    assert "'contract' is numeric with 60 distinct values" in warning
    encoded = schema.model_copy(update={"high_cardinality": ["contract"]})
    assert check_schema(encoded, [("t.csv", table)], "params.yaml", require_target=False) == []


@pytest.mark.parametrize("holdout", ["data/raw", "data/raw/holdout", "data"])
def test_the_pinned_holdout_may_not_overlap_the_training_data(default_params_raw, holdout):
    # prepare reads every table under paths.raw_data: a holdout there would be trained on.
    raw = copy.deepcopy(default_params_raw)
    raw["paths"]["holdout"] = holdout
    with pytest.raises(ConfigError, match=r"paths\.holdout .* overlaps paths\.raw_data"):
        parse_params(raw)


def test_the_holdout_share_is_a_share_below_one(default_params_raw):
    raw = copy.deepcopy(default_params_raw)
    raw["ingest"]["holdout_share"] = 1.0  # every row held out: nothing would train
    with pytest.raises(ConfigError, match=r"ingest\.holdout_share"):
        parse_params(raw)


def test_one_bag_fold_is_an_error_naming_the_key(default_params_raw):
    raw = copy.deepcopy(default_params_raw)
    assert parse_params(raw).train.bag_folds == 0  # one model unless params.yaml says
    raw["train"]["bag_folds"] = 1
    with pytest.raises(ConfigError, match=r"train\.bag_folds: .*1 is no bag: 0 \(one model\)"):
        parse_params(raw)
    raw["train"]["bag_folds"] = 5
    assert parse_params(raw).train.bag_folds == 5


def test_train_workers_is_one_or_more_and_one_unless_said(default_params_raw):
    raw = copy.deepcopy(default_params_raw)
    raw["train"].pop("workers")
    assert parse_params(raw).train.workers == 1  # a bag's members one at a time
    raw["train"]["workers"] = 0
    with pytest.raises(ConfigError, match=r"train\.workers: .*greater than or equal to 1"):
        parse_params(raw)
