"""The draft suite: rules as a data table and a small builder; valid GE that passes on its own
table (byte-identical to what the 153-line `build_suite` wrote: test_command's golden files)."""

from __future__ import annotations

import json

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
