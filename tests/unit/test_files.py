"""retrain.files and retrain.markdown: the one way to publish JSON and Markdown blocks."""

from __future__ import annotations

import json
import math

import pytest

from retrain.files import json_text, write_json, write_text
from retrain.markdown import replace_block, table


def test_json_is_sorted_indented_and_refuses_nan(tmp_path):
    path = write_json(tmp_path / "a" / "b.json", {"b": 1, "a": [1.5, None]})
    assert path.read_text() == '{\n  "a": [\n    1.5,\n    null\n  ],\n  "b": 1\n}\n'
    with pytest.raises(ValueError, match="JSON compliant"):
        write_json(tmp_path / "nan.json", {"auc": math.nan})
    assert not (tmp_path / "nan.json").exists()
    with pytest.raises(ValueError):
        json_text({"x": math.inf})
    assert json.loads(json_text({"p": tmp_path}, default=str)) == {"p": str(tmp_path)}


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = write_json(tmp_path / "m.json", {"v": 1})
    with pytest.raises(ValueError):
        write_json(path, {"v": math.nan})
    assert json.loads(path.read_text()) == {"v": 1}
    write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]  # no .tmp left behind


def test_markdown_table_and_blocks():
    assert table(["a", "b"], [["1", "2"]], "lr") == ["| a | b |", "|---|---:|", "| 1 | 2 |"]
    assert table(["a", "b"], [])[1] == "|---|---|"
    with pytest.raises(ValueError, match="does not fit"):
        table(["a"], [], "lr")
    text = "x\n<!-- t:start -->\nold\n<!-- t:end -->\ny\n"
    assert replace_block(text, "t", "new\n") == "x\n<!-- t:start -->\nnew\n<!-- t:end -->\ny\n"
    with pytest.raises(ValueError, match="no <!-- u:start -->"):
        replace_block(text, "u", "new\n")
