"""Editing params.yaml: the dataset-specific keys `retrain init` owns are replaced, every
other line (comments included) is kept as written. The file is edited line by line
(`yaml_lines`); values are rendered by ruamel.yaml's public dumper."""

from __future__ import annotations

import io
import re
from functools import cache
from pathlib import Path
from typing import Any

from retrain.init.columns import FEATURE_REASON
from retrain.init.profile import Profile
from retrain.init.yaml_lines import Document
from retrain.task import TaskKind

# The full-line comments a previous run wrote (below): replaced, never stacked. Only these:
# a user's own comment that mentions `retrain init` stays.
_INIT_COMMENT = re.compile(r"^\s*# (Written|Gaps found) by `retrain init`[ ,]")
HEAD = ("name", "suite", "target", "task", "positive_class", "classes", "id_column")
FILL_COMMENT = (
    "Gaps found by `retrain init`, filled with the column's median; a documented value may be "
    "right."
)


@cache
def _dumper() -> Any:
    from ruamel.yaml import YAML

    rt = YAML()
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.width = 4096  # never fold a long value or comment
    return rt


def render(key: str, value: Any) -> list[str]:
    """`key: value` as YAML lines at indent 0 (a flow list or an empty map stays inline)."""
    buf = io.StringIO()
    _dumper().dump({key: value}, buf)
    return buf.getvalue().rstrip("\n").split("\n")


def _flow(items: list[Any]) -> Any:
    from ruamel.yaml.comments import CommentedSeq

    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def _quoted(value: Any) -> Any:
    """A string positive class double-quoted, so "Yes" and "1" stay strings for any reader."""
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    return DoubleQuotedScalarString(value) if isinstance(value, str) else value


def _listed(key: str, items: list[str], reasons: dict[str, str]) -> list[str]:
    """A block list, each item with its reason beside it, the reasons in one column."""
    if not items:
        return [f"{key}: []"]
    column = 5 + max(len(str(i)) for i in items)  # as params.yaml lays out its comments
    lines = [f"{key}:"]
    for item in items:
        line = f"  - {render('k', item)[0][3:]}"
        if item in reasons:
            line += " " * max(1, column - len(line)) + f"# {reasons[item]}"
        lines.append(line)
    return lines


def _dataset(doc: Document, p: Profile, suite: Path) -> None:
    left = "; ".join(f"{c}: {why}" for c, why in p.left_out.items()) or "nothing"
    # `task: binary` is the default: written over an existing `task:` line, never added (so
    # a params.yaml without one, as before tasks, gets the same bytes as then).
    binary = p.task == "binary" and doc.find(("dataset", "task")) is None
    head = {
        "name": p.name,
        "suite": str(suite),
        "target": p.target,
        "task": None if binary else p.task,
        "positive_class": None if p.positive_class is None else _quoted(p.positive_class),
        "classes": _flow([_quoted(c) for c in p.classes]) if p.classes else None,
        "id_column": p.id_column,
    }
    for i, (key, value) in enumerate(head.items()):
        if value is None:
            doc.delete(("dataset", key))
            continue
        comment = f"Written by `retrain init` (review it); left out: {left}" if i == 0 else None
        doc.set(("dataset", key), render(key, value), after=HEAD[:i], first=True, comment=comment)
    keep = lambda note: not FEATURE_REASON.match(note)  # noqa: E731 (a one-line predicate)
    for key, cols in (("numeric", p.numeric), ("categorical", p.categorical)):
        doc.set(("dataset", key), _listed(key, cols, p.reasons), keep=keep)
    # Written when a column has that many levels or the key is there (then maybe `[]`): a
    # params.yaml without it, for a table without such a column, keeps its bytes.
    if p.high_cardinality or doc.find(("dataset", "high_cardinality")) is not None:
        lines = render("high_cardinality", _flow(list(p.high_cardinality)))
        doc.set(("dataset", "high_cardinality"), lines, after=("categorical",))
    if doc.find(("dataset", "pii_allow")) is None:
        doc.set(("dataset", "pii_allow"), ["pii_allow: []"])


def _per_column_method(doc: Document, features: set[str]) -> None:
    """Drift methods named for columns that are no longer features are dropped."""
    path = ("drift", "per_column_method")
    methods = doc.value(path)
    if not isinstance(methods, dict):
        return
    kept = {col: method for col, method in methods.items() if col in features}
    if kept != methods:
        doc.set(path, render(path[-1], kept))


def _gate_metric(doc: Document, task: TaskKind) -> None:
    """A gate metric that does not score the task (roc_auc for a regression) becomes the
    task's default; one that does (or none: the config fills the default) stays."""
    from retrain.task import BinaryTask, MulticlassTask, RegressionTask

    kind = {t.kind: t for t in (BinaryTask, MulticlassTask, RegressionTask)}[task]
    path = ("registry", "gate", "metric")
    metric = doc.value(path)
    if metric and metric not in kind.gate_metrics:
        doc.set(path, render("metric", kind.default_metric))


def update_params(text: str, p: Profile, suite: Path, raw_data: Path | str) -> str:
    """params.yaml's text with the dataset-specific keys replaced; the rest kept as written."""
    text = "".join(
        line for line in text.splitlines(keepends=True) if not _INIT_COMMENT.match(line)
    )
    doc = Document(text)
    _dataset(doc, p, suite)
    doc.set(("paths", "raw_data"), render("raw_data", str(raw_data)))
    fill = render("fill_values", dict(p.fill_values))
    doc.set(("prepare", "fill_values"), fill, comment=FILL_COMMENT)
    doc.set(("report", "slices"), render("slices", _flow(list(p.slices))))
    model = re.sub(r"[^a-z0-9]+", "-", p.name.lower()).strip("-") or "model"
    doc.set(("registry", "model_name"), render("model_name", f"{model}-model"))
    doc.set(("registry", "gate", "slices"), render("slices", _flow(list(p.slices[:2]))))
    doc.set(("tune", "study_name"), render("study_name", f"retrain-{p.name}"))
    _per_column_method(doc, {*p.numeric, *p.categorical})
    _gate_metric(doc, p.task)
    return doc.text()
