"""Editing params.yaml: the keys `retrain init` owns are replaced, every comment a user wrote
is kept, the output is what HEAD's ruamel-based editor wrote (save the comments it lost),
and no private API of a YAML library is used."""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import pytest
import yaml

from retrain.config import parse_params
from retrain.init import profile, slug, update_params
from tests.conftest import REPO
from tests.unit.init.conftest import GOLDEN, TARGETS
from tests.unit.init.test_profile import crafted


def init_sources() -> list[Path]:
    """The init package's modules (or, before the split, its one module)."""
    import retrain.init

    path = Path(retrain.init.__file__)
    return sorted(path.parent.glob("*.py")) if path.name == "__init__.py" else [path]


# A user's notes at several levels: on a key's line, between keys, inside a list init
# rewrites, on an item of it, on a key init removes (attrition has no id), one that names
# `retrain init` (init's own notes are replaced), at the end.
NOTES = [
    ("  name: telco_churn", "  name: telco_churn   # user note 1: the dataset's short name"),
    ("  positive_class:", "  # user note 2: the label column is above\n  positive_class:"),
    ("    - tenure\n", "    - tenure\n    # user note 3: money columns follow\n"),
    ("    - monthly_charges\n", "    - monthly_charges  # user note 4: in USD\n"),
    ("  id_column: customer_id", "  id_column: customer_id  # user note 5: the CRM key"),
    ("    max_ece:", "    # user note 6: nested two levels deep\n    max_ece:"),
    ("  per_column_method: {}", "  per_column_method: {tenure: ks, MonthlyIncome: psi}"),
    ("  fill_values:", "  # user note 8: reviewed after `retrain init`\n  fill_values:"),
]


def _commented() -> str:
    text = (GOLDEN / "params.yaml").read_text()
    for old, new in NOTES:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text + "# user note 7: the end of the file\n"


def _comments(text: str) -> list[str]:
    """Every comment's text (from a `#` after a blank or at a line's start; none of these
    files has a `#` inside a quoted value)."""
    return [m.group(1).strip() for m in re.finditer(r"(?:^|\s)#(.*)$", text, re.M)]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_user_comment_is_kept(tables, name):
    text = _commented()
    p = profile(tables[name], target=TARGETS[name], name=name)
    once = update_params(text, p, Path(f"expectations/{name}.json"), Path("data/raw"))
    lost = [c for c in _comments(text) if c not in "\n".join(_comments(once))]
    assert lost == []
    assert update_params(once, p, Path(f"expectations/{name}.json"), Path("data/raw")) == once
    params = parse_params(yaml.safe_load(once))
    assert params.dataset.name == name and params.dataset.target == TARGETS[name]
    # A drift method for a column that is no longer a feature is dropped, the others kept.
    expected = {"tenure": "ks"} if name == "telco_churn" else {"MonthlyIncome": "psi"}
    assert params.drift.per_column_method == expected
    assert "user note 1" in next(ln for ln in once.splitlines() if ln.startswith("  name:"))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_a_file_without_comments_in_another_layout_gets_the_same_values(tables, name):
    """`yaml.safe_dump`'s layout (list items level with their key, as tests' repos write
    params.yaml) is edited to the same configuration as the commented original."""
    text = (GOLDEN / "params.yaml").read_text()
    flat = yaml.safe_dump(yaml.safe_load(text), sort_keys=False)
    p = profile(tables[name], target=TARGETS[name], name=name)
    args = (p, Path(f"expectations/{name}.json"), Path("data/raw"))
    assert yaml.safe_load(update_params(flat, *args)) == yaml.safe_load(update_params(text, *args))


def test_no_private_api_of_a_dependency():
    """ruamel's comment internals (`.ca`, comment tokens) or any `obj._name` of another
    library: none in the init package (its own `self._x` methods aside)."""
    found = []
    for path in init_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and (
                node.attr == "ca"
                or node.attr.startswith("_")
                and not (isinstance(node.value, ast.Name) and node.value.id == "self")
            ):
                found.append(f"{path.name}:{node.lineno}: .{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                names = [*(node.module or "").split("."), *(a.name for a in node.names)]
                found += [f"{path.name}:{node.lineno}: {n}" for n in names if n.startswith("_")]
    assert found == []


def test_params_update_parses_and_is_stable():
    df = crafted()
    p = profile(df, target="left", name=slug("My Accounts.csv"))
    text = (REPO / "params.yaml").read_text()
    once = update_params(text, p, Path("expectations/x.json"), "data/raw")
    twice = update_params(once, p, Path("expectations/x.json"), "data/raw")
    assert once == twice
    raw = yaml.safe_load(once)
    params = parse_params(copy.deepcopy(raw))
    assert params.dataset.name == "my_accounts_csv"
    assert params.dataset.id_column == "AccountID"
    assert params.prepare.fill_values.keys() == {"income"}
    assert params.report.slices == ["plan"] and params.registry.gate.slices == ["plan"]
    assert params.registry.model_name == "my-accounts-csv-model"
    assert "# text with 3 levels" in once  # the reason beside each column, for review
