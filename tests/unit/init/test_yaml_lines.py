"""The line editor under params_edit: a key is replaced where it stands, a missing one is
added to its parent (created, or turned from an inline value into a block), and comments
stay."""

from __future__ import annotations

import yaml

from retrain.init.params_edit import render
from retrain.init.yaml_lines import Document, split_comment

TEXT = """\
# top
a: 1   # one
registry: {stage: prod}   # inline
list:
- x   # same-level items, as yaml.safe_dump writes them
- y
tune:
  # inside
  x: 'a # not a comment'
"""


def test_set_replaces_in_place_and_creates_what_is_missing():
    doc = Document(TEXT)
    doc.set(("registry", "gate", "slices"), render("slices", ["s"]))
    doc.set(("list",), ["list: []"])
    doc.set(("tune", "x"), render("x", "b"))
    doc.set(("new", "k"), ["k: 2"])
    out = doc.text()
    assert yaml.safe_load(out) == {
        "a": 1,
        "registry": {"stage": "prod", "gate": {"slices": ["s"]}},
        "list": [],
        "tune": {"x": "b"},
        "new": {"k": 2},
    }
    for note in ("# top", "# one", "# inline", "# inside"):
        assert note in out
    # The comment on a replaced item moves above its key, the key's own stays on its line.
    assert "# - x: same-level items, as yaml.safe_dump writes them\nlist: []" in out
    assert out.splitlines()[1] == "a: 1   # one"


def test_a_hash_inside_quotes_is_not_a_comment():
    assert split_comment("  x: 'a # b'  # c") == ("  x: 'a # b'", "# c", 14)
    assert split_comment("  x: a#b") == ("  x: a#b", None, -1)
