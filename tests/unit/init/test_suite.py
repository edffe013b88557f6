"""The draft suite: rules as a data table and a small builder; valid GE that passes on its own
table (byte-identical to what the 153-line `build_suite` wrote: test_command's golden files)."""

from __future__ import annotations

import json

import yaml

from retrain.config import DatasetSchema
from retrain.init import build_suite, profile
from retrain.init.suite import RULES, subjects
from retrain.validation.suite import check_suite, validate_frame
from tests.unit.init.test_profile import crafted


def test_every_expectation_comes_from_one_rule_of_the_table():
    """Each rule names a GE class, says why, and fires on the crafted table; each built
    expectation is one (rule, subject) pair, in the order subjects x rules."""
    import great_expectations.expectations as gxe

    df = crafted()
    seen: set[int] = set()
    # One target of each task: binary `left`, multiclass `plan`, regression `age`.
    for target in ("left", "plan", "age"):
        p = profile(df, target=target, name="accounts")
        fired = [
            (rule, s)
            for s in subjects(df, p)
            for rule in RULES
            if s.scope in rule.scopes and rule.when(s)
        ]
        seen |= {id(rule) for rule, _ in fired}
        suite = build_suite(df, p)["expectations"]
        assert len(suite) == len(fired)
        for (rule, subject), built in zip(fired, suite, strict=True):
            assert hasattr(gxe, rule.expectation)
            assert built["meta"]["why"] == rule.why(subject)
            assert built["severity"] == rule.severity
            assert built["kwargs"].get("column") == subject.column
    assert seen == {id(rule) for rule in RULES}  # none is dead


def test_draft_suite_is_valid_ge_and_passes_on_its_table(tmp_path):
    df = crafted()
    p = profile(df, target="left", name="accounts")
    suite = build_suite(df, p)
    check_suite("accounts.json", suite)  # every entry builds in GE
    assert all(
        e["meta"]["why"] and e["severity"] in ("critical", "warning")
        for e in suite["expectations"]
    )
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(suite))
    schema = DatasetSchema(
        name=p.name,
        suite=path,
        target=p.target,
        positive_class=p.positive_class,
        id_column=p.id_column,
        numeric=p.numeric,
        categorical=p.categorical,
    )
    assert validate_frame(df, path, "accounts.csv", schema=schema).success
    broken = df.assign(plan=df["plan"].where(df.index > 0, "platinum"))
    result = validate_frame(broken, path, "accounts.csv", schema=schema)
    assert not result.success and result.failures[0].column == "plan"
    assert build_suite(df, p) == suite  # deterministic


def test_a_high_cardinality_column_takes_new_levels_a_one_hot_column_does_not(tmp_path):
    """segment (79 levels) is target + frequency encoded: params.yaml lists it under
    dataset.high_cardinality, and a batch or a request with a new segment is not rejected
    (reported only), while a new plan (one-hot) still is (issue 27)."""
    from retrain.config import parse_params
    from retrain.init import update_params
    from retrain.serve.checks import RequestChecker
    from tests.unit.init.conftest import GOLDEN

    df = crafted()
    p = profile(df, target="left", name="accounts")
    text = update_params((GOLDEN / "params.yaml").read_text(), p, "s.json", "data/raw")
    assert "  high_cardinality: [segment]\n" in text
    assert update_params(text, p, "s.json", "data/raw") == text  # a re-run: the same file
    raw = yaml.safe_load(text)
    assert parse_params(raw).dataset.high_cardinality == ["segment"]
    suite = build_suite(df, p)
    in_set = {
        e["kwargs"]["column"]: e
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_in_set"
    }
    assert in_set["segment"]["severity"] == "warning" and in_set["plan"]["severity"] == "critical"
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(suite))
    schema = parse_params(raw).dataset.model_copy(update={"suite": path})
    batch = df.assign(
        segment=df["segment"].where(df.index > 0, "s-new"),
        plan=df["plan"].where(df.index > 1, "platinum"),
    )
    result = validate_frame(batch, path, "batch.csv", schema=schema)
    assert [f.column for f in result.blocking_failures] == ["plan"]  # not segment
    crowded = df.assign(segment=df["segment"].where(df.index > 100, "s-new"))  # 25% new
    failed = validate_frame(crowded, path, "batch.csv", schema=schema)
    assert failed.success and [f.column for f in failed.failures] == ["segment"]  # warned
    # The service checks a request against the suite's blocking rules: no level list here.
    rules = RequestChecker(path, schema).rules()
    assert "segment" not in rules or rules["segment"].values is None
    assert rules["plan"].values == tuple(sorted(df["plan"].unique()))
