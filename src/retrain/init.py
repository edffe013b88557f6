"""`retrain init TABLE --target COL`: from a table to a configured, pinned project.

Profiles the table and writes what a person would otherwise write by hand:

- params.yaml's `dataset:` section (numeric vs categorical, each with the reason; ids, free
  text, constant and empty columns left out, each choice printed for review);
- `prepare.fill_values` for numeric gaps, `report.slices` and `registry.gate.slices` from
  low-cardinality categoricals, names derived from the dataset's name;
- a draft Great Expectations suite `expectations/<name>.json`, built with GE's expectation
  classes, each expectation with a severity and a `meta.why`;
- the table copied into `paths.raw_data` (the previous dataset's files there removed, and
  listed) and pinned by `paths.data_pin` through DVC.

Everything is a function of the table and the options: a re-run writes the same bytes.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain import PARAMS_FILE
from retrain.config import ConfigError, parse_params
from retrain.data.io import SUFFIXES, read_table
from retrain.errors import RetrainError

# A column whose name says it is an identifier (customer_id, CustomerID, uuid, rownames).
_ID_NAME = re.compile(r"(^|[_\W])(id|key|uuid|guid|rownames?)$|^rownames?$|[a-z]ID$|Id$", re.I)
# Categorical columns with more distinct values than this are too sparse to one-hot encode.
MAX_LEVELS = 50
# Slices: categoricals with 2..MAX_SLICE_LEVELS levels, the most balanced first.
MAX_SLICE_LEVELS = 8
NUMERIC_TYPES = ["int64", "int32", "int16", "int8", "float64", "float32", "Int64", "Float64"]
AFFIRMATIVE = ("1", "true", "yes", "y", "t", "positive", "pos")


class InitError(RetrainError):
    """The table or the options cannot make a project (one line, names the column)."""


@dataclass
class Profile:
    """What `init` decided about each column, and why."""

    name: str
    target: str
    positive_class: str | int | bool
    negative_class: str | int | bool
    id_column: str | None
    numeric: list[str]
    categorical: list[str]
    left_out: dict[str, str]
    reasons: dict[str, str]
    fill_values: dict[str, float | int]
    slices: list[str]
    n_rows: int
    notes: list[str] = field(default_factory=list)


def slug(text: str) -> str:
    """A dataset name from a file name: lower case, words joined by underscores."""
    out = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return out or "dataset"


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value YAML and JSON write."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _is_integer_valued(values: pd.Series) -> bool:
    finite = values.dropna()
    return bool(len(finite)) and bool(np.all(np.mod(finite.to_numpy(dtype=float), 1) == 0))


def _decimals(values: pd.Series) -> int:
    """How many decimals the column is written with (at most 6)."""
    for d in range(7):
        if np.allclose(values.dropna().to_numpy(dtype=float), values.dropna().round(d)):
            return d
    return 6


def _positive_class(values: pd.Series, given: str | None, target: str) -> tuple[Any, Any, str]:
    levels = sorted(values.dropna().unique().tolist(), key=str)
    if len(levels) != 2:
        shown = [_plain(v) for v in levels[:6]]
        raise InitError(
            f"column {target!r} (target) has {len(levels)} distinct values {shown}; "
            "a binary target has exactly 2"
        )
    if given is not None:
        match = [v for v in levels if str(v) == str(given)]
        if not match:
            raise InitError(
                f"--positive-class {given!r} never occurs in column {target!r} "
                f"(values: {[_plain(v) for v in levels]})"
            )
        pos = match[0]
        return _plain(pos), _plain(next(v for v in levels if v is not pos)), "given"
    affirmative = [v for v in levels if str(v).strip().lower() in AFFIRMATIVE]
    if len(affirmative) == 1:
        pos = affirmative[0]
        reason = f"{pos!r} reads as the affirmative of the two values"
    else:
        counts = values.value_counts()
        pos = min(levels, key=lambda v: (counts[v], str(v)))
        reason = f"{pos!r} is the rarer of the two values ({counts[pos]} of {len(values)} rows)"
    neg = next(v for v in levels if v is not pos)
    return _plain(pos), _plain(neg), reason


def _classify(col: str, s: pd.Series, n: int) -> tuple[str, str]:
    """('numeric'|'categorical'|'left out', reason) for one non-target, non-id column."""
    values = s.dropna()
    distinct = int(values.nunique())
    nulls = n - len(values)
    if distinct == 0:
        return "left out", "empty: every value is missing"
    if distinct == 1:
        return "left out", f"constant ({_plain(values.iloc[0])!r}): carries no signal"
    if pd.api.types.is_bool_dtype(s):
        return "categorical", "true/false values"
    if pd.api.types.is_numeric_dtype(s):
        kind = "integer" if _is_integer_valued(values) else "decimal"
        gaps = f", {nulls} missing" if nulls else ""
        return "numeric", f"{kind} numbers, {distinct} distinct values{gaps}"
    text = values.astype(str)
    if distinct > MAX_LEVELS and distinct > 0.5 * len(values):
        mean_len = float(text.str.len().mean())
        what = "free text" if mean_len > 30 or text.str.contains(" ").mean() > 0.5 else "a key"
        return "left out", (
            f"{what}: {distinct} distinct values in {len(values)} rows (an identifier or "
            "free text, not a feature)"
        )
    if distinct > MAX_LEVELS:
        return "left out", (
            f"text with {distinct} distinct values (more than {MAX_LEVELS}): too sparse to "
            "one-hot encode; derive a coarser column to use it"
        )
    return "categorical", f"text with {distinct} levels"


def _is_id(col: str, s: pd.Series, n: int) -> bool:
    return bool(
        _ID_NAME.search(col) and s.notna().all() and s.nunique() == n and n > 1
    ) and not pd.api.types.is_float_dtype(s)


def _slices(df: pd.DataFrame, categorical: list[str]) -> list[str]:
    ranked = []
    for col in categorical:
        counts = df[col].value_counts(dropna=True)
        if 2 <= len(counts) <= MAX_SLICE_LEVELS:
            ranked.append((-counts.min() / counts.sum(), len(counts), categorical.index(col), col))
    return [c for *_, c in sorted(ranked)][:3]


def profile(
    df: pd.DataFrame,
    *,
    target: str,
    name: str,
    positive_class: str | None = None,
    id_column: str | None = None,
) -> Profile:
    """Decide the role of every column of `df`, each with a reason a reviewer can check."""
    n = len(df)
    if target not in df.columns:
        raise InitError(f"--target {target!r} is not a column (columns: {list(df.columns)})")
    if id_column is not None and id_column not in df.columns:
        raise InitError(f"--id {id_column!r} is not a column (columns: {list(df.columns)})")
    if df[target].isna().any():
        raise InitError(f"column {target!r} (target) has {int(df[target].isna().sum())} blanks")
    pos, neg, why_pos = _positive_class(df[target], positive_class, target)
    reasons: dict[str, str] = {target: f"target; positive class {pos!r} ({why_pos})"}
    left_out: dict[str, str] = {}
    numeric: list[str] = []
    categorical: list[str] = []
    if id_column is not None:
        reasons[id_column] = "id column (given)"
    for col in df.columns:
        if col in (target, id_column):
            continue
        s = df[col]
        if id_column is None and _is_id(col, s, n):
            id_column = col
            reasons[col] = "id column: its name says so and every row has its own value"
            continue
        role, why = _classify(col, s, n)
        if role == "numeric":
            numeric.append(col)
        elif role == "categorical":
            categorical.append(col)
        else:
            left_out[col] = why
        reasons[col] = why
    if not numeric and not categorical:
        raise InitError(f"no feature column left in the table after {sorted(left_out)}")
    fill: dict[str, float | int] = {}
    for col in numeric:
        if df[col].isna().any():
            median = float(df[col].median())
            value: float | int = (
                int(round(median)) if _is_integer_valued(df[col]) else round(median, 6)
            )
            fill[col] = value
    return Profile(
        name=name,
        target=target,
        positive_class=pos,
        negative_class=neg,
        id_column=id_column,
        numeric=numeric,
        categorical=categorical,
        left_out=left_out,
        reasons=reasons,
        fill_values=fill,
        slices=_slices(df, categorical),
        n_rows=n,
    )


# --- the suite ---------------------------------------------------------------------------


def _bound(value: float, integer: bool, decimals: int, up: bool) -> float | int:
    if integer:
        return int(math.ceil(value) if up else math.floor(value))
    step = 10.0**-decimals
    rounded = (math.ceil(value / step) if up else math.floor(value / step)) * step
    return round(rounded, decimals)


def build_suite(df: pd.DataFrame, p: Profile) -> dict[str, Any]:
    """The draft suite as JSON data, built with Great Expectations' expectation classes."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.expectations.metadata_types import FailureSeverity

    CRITICAL, WARNING = FailureSeverity.CRITICAL, FailureSeverity.WARNING  # noqa: N806

    def why(text: str) -> dict[str, str]:
        return {"why": text}

    n = p.n_rows
    es: list[Any] = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=sorted(str(c) for c in df.columns),
            exact_match=True,
            severity=CRITICAL,
            meta=why(
                f"The {len(df.columns)} columns of the profiled table; a missing or extra "
                "column is a schema change that needs a reviewed suite and params change."
            ),
        ),
        gxe.ExpectTableRowCountToBeBetween(
            min_value=min(100, n),
            max_value=100 * n,
            severity=WARNING,
            meta=why(
                f"The profiled table has {n} rows; a file under {min(100, n)} rows is likely "
                f"a truncated export, one over {100 * n} a different extract."
            ),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column=p.target, severity=CRITICAL, meta=why("Every training row needs a label.")
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column=p.target,
            value_set=sorted([p.negative_class, p.positive_class], key=str),
            severity=CRITICAL,
            meta=why(
                f"The target is binary: {p.negative_class!r} or the positive class "
                f"{p.positive_class!r}."
            ),
        ),
    ]
    if p.id_column:
        es += [
            gxe.ExpectColumnValuesToNotBeNull(
                column=p.id_column,
                severity=CRITICAL,
                meta=why("Rows are tracked, de-duplicated and explained by their id."),
            ),
            gxe.ExpectColumnValuesToBeUnique(
                column=p.id_column,
                severity=CRITICAL,
                meta=why(
                    "A repeated id means a duplicated or merged export, which would leak rows "
                    "between the train and test splits."
                ),
            ),
        ]
    for col in [*p.numeric, *p.categorical]:
        s = df[col]
        share = float(s.isna().mean())
        if share == 0:
            es.append(
                gxe.ExpectColumnValuesToNotBeNull(
                    column=col,
                    mostly=0.99,
                    severity=CRITICAL,
                    meta=why(
                        "Never blank in the profiled table; up to 1% blanks are tolerated "
                        "(the preprocessor fills them), more means a broken export."
                    ),
                )
            )
        else:
            tolerated = min(1.0, share + max(0.01, share / 2))
            es.append(
                gxe.ExpectColumnValuesToNotBeNull(
                    column=col,
                    mostly=round(1 - tolerated, 4),
                    severity=CRITICAL,
                    meta=why(
                        f"{share:.2%} blank in the profiled table; up to {tolerated:.2%} is "
                        "tolerated, more means the gap is growing."
                    ),
                )
            )
        if col in p.numeric:
            es.append(
                gxe.ExpectColumnValuesToBeInTypeList(
                    column=col,
                    type_list=NUMERIC_TYPES,
                    severity=CRITICAL,
                    meta=why(
                        "The model reads this column as a number; text here means a broken "
                        "export or a shifted column."
                    ),
                )
            )
            values = s.dropna()
            low, high = float(values.min()), float(values.max())
            integer = _is_integer_valued(values)
            decimals = 0 if integer else _decimals(values)
            margin = 0.1 * (high - low)
            lo = _bound(low - margin, integer, decimals, up=False)
            hi = _bound(high + margin, integer, decimals, up=True)
            if low >= 0:
                lo = max(lo, 0)
                es.append(
                    gxe.ExpectColumnValuesToBeBetween(
                        column=col,
                        min_value=0,
                        severity=CRITICAL,
                        meta=why("Never negative in the profiled table; a sign flip is a bug."),
                    )
                )
            es.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=col,
                    min_value=lo,
                    max_value=hi,
                    mostly=0.99,
                    severity=WARNING,
                    meta=why(
                        f"Profiled range [{_plain(low)}, {_plain(high)}] widened by 10% of "
                        "its span: values beyond it are drift worth a look, not an error."
                    ),
                )
            )
        else:
            levels = sorted((_plain(v) for v in s.dropna().unique()), key=str)
            es.append(
                gxe.ExpectColumnValuesToBeInSet(
                    column=col,
                    value_set=levels,
                    severity=CRITICAL,
                    meta=why(
                        f"The {len(levels)} levels seen in the profiled table; an unseen "
                        "level has no learned encoding, so it needs review before training."
                    ),
                )
            )
    suite = gx.ExpectationSuite(
        name=p.name,
        expectations=es,
        meta={
            "dataset": p.name,
            "notes": "Drafted by `retrain init` from the table; review every expectation. "
            "severity critical blocks the pipeline; warning is reported only.",
        },
    )
    return dict(suite.to_json_dict())


# --- params.yaml -------------------------------------------------------------------------


def _replace_seq(seq: Any, items: list[Any], comments: dict[str, str]) -> None:
    """Put `items` in a block sequence, each with its reason as an end-of-line comment,
    keeping the comment lines that followed the old last item (they belong to the next key)."""
    last = seq.ca.items.get(len(seq) - 1) if len(seq) else None
    trailing = last[0].value if last and last[0] is not None else ""
    trailing = trailing[trailing.index("\n") :] if "\n" in trailing else ""
    del seq[:]
    seq.ca.items.clear()
    seq.extend(items)
    column = 7 + max((len(str(i)) for i in items), default=0)
    for i, item in enumerate(items):
        if item in comments:
            seq.yaml_add_eol_comment(comments[item], i, column=column)
    if items and trailing.strip():
        token = seq.ca.items[len(items) - 1][0]
        token.value = token.value.rstrip("\n") + trailing


def _flow_seq(items: list[str]) -> Any:
    from ruamel.yaml.comments import CommentedSeq

    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def _replace_map(parent: Any, key: str, values: dict[str, Any], comment: str) -> None:
    """Set `parent[key]` to `values`, keeping the comment lines that followed the old value."""
    from ruamel.yaml.comments import CommentedMap

    old = parent.get(key)
    trailing = None
    if isinstance(old, CommentedMap) and len(old):
        entry = old.ca.items.get(list(old)[-1])
        trailing = entry[2] if entry else None
    new = CommentedMap(values)
    if not values:
        new.fa.set_flow_style()
    parent[key] = new
    parent.ca.items.pop(key, None)
    parent.yaml_set_comment_before_after_key(key, before=comment, indent=2)
    if trailing is not None:
        if values:
            new.ca.items[list(values)[-1]] = [None, None, trailing, None]
        else:
            entry = parent.ca.items.setdefault(key, [None, None, None, None])
            entry[2] = trailing


_INIT_COMMENT = re.compile(r"^\s*#.*`retrain init`")


def update_params(text: str, p: Profile, suite: Path, raw_data: Path) -> str:
    """params.yaml's text with the dataset-specific keys replaced; the rest kept as written."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    rt = YAML()
    rt.preserve_quotes = True
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.width = 4096
    # The full-line comments a previous run wrote (ruamel would keep and add to them).
    text = "".join(
        line for line in text.splitlines(keepends=True) if not _INIT_COMMENT.match(line)
    )
    doc = rt.load(text)
    dataset = doc["dataset"]
    # A previous run's comment, which ruamel keeps on the map and on its key.
    for holder, i in ((dataset.ca.comment, 1), (doc.ca.items.get("dataset"), 3)):
        if holder and holder[i]:
            holder[i] = [t for t in holder[i] if "retrain init" not in t.value] or None
    for key in ("name", "suite", "target", "positive_class", "id_column"):
        dataset.pop(key, None)
        dataset.ca.items.pop(key, None)
    head = [
        ("name", p.name),
        ("suite", str(suite)),
        ("target", p.target),
        (
            "positive_class",
            DoubleQuotedScalarString(p.positive_class)
            if isinstance(p.positive_class, str)
            else p.positive_class,
        ),
    ]
    if p.id_column:
        head.append(("id_column", p.id_column))
    for i, (key, value) in enumerate(head):
        dataset.insert(i, key, value)
    for key, cols in (("numeric", p.numeric), ("categorical", p.categorical)):
        if key not in dataset:
            dataset[key] = _flow_seq([])
            dataset[key].fa.set_block_style()
        _replace_seq(dataset[key], cols, p.reasons)
    dataset.setdefault("pii_allow", [])
    left = "; ".join(f"{c}: {why}" for c, why in p.left_out.items()) or "nothing"
    dataset.yaml_set_comment_before_after_key(
        "name", before=f"Written by `retrain init` (review it); left out: {left}", indent=2
    )
    doc["paths"]["raw_data"] = str(raw_data)
    _replace_map(
        doc["prepare"],
        "fill_values",
        p.fill_values,
        "Gaps found by `retrain init`, filled with the column's median; a documented value "
        "may be right.",
    )
    doc["report"]["slices"] = _flow_seq(list(p.slices))
    if "registry" not in doc:
        doc["registry"] = CommentedMap()
    reg = doc["registry"]
    reg["model_name"] = (re.sub(r"[^a-z0-9]+", "-", p.name.lower()).strip("-") or "model") + (
        "-model"
    )
    if "gate" not in reg:
        reg["gate"] = CommentedMap()
    reg["gate"]["slices"] = _flow_seq(list(p.slices[:2]))
    doc["tune"]["study_name"] = f"retrain-{p.name}"
    features = {*p.numeric, *p.categorical}
    drift = doc.get("drift")
    if drift is not None and drift.get("per_column_method"):
        for col in [c for c in drift["per_column_method"] if c not in features]:
            del drift["per_column_method"][col]
    buf = io.StringIO()
    rt.dump(doc, buf)
    return buf.getvalue()


# --- pinning -----------------------------------------------------------------------------


def pin(root: Path, raw_data: Path, data_pin: Path) -> str:
    """Pin `raw_data` in `data_pin`, updated in place (`dvc commit`, as ingest does); its md5.

    (`dvc add data/raw` would write a new `data/raw.dvc` beside the existing pin.)
    """
    from retrain.infra import dvc
    from retrain.infra.dvc import read_pin

    rel_pin = data_pin.relative_to(root)
    out_path = Path(os.path.relpath(raw_data, data_pin.parent)).as_posix()
    try:
        pinned = read_pin(data_pin).path.resolve() == raw_data.resolve()
    except RetrainError:
        pinned = False
    if not pinned:
        data_pin.write_text(f"outs:\n- path: {out_path}\n")
    done = dvc.run(root, "commit", "-f", "-q", str(rel_pin), check=False)
    if done.code != 0:
        lines = [ln for ln in done if ln.strip()] or ["failed"]
        raise InitError(f"{rel_pin}: dvc commit failed: {lines[-1]}")
    return read_pin(data_pin).md5


def place_table(table: Path, folder: Path, say: Callable[[str], None]) -> Path:
    """Copy `table` into the raw folder; remove the previous dataset's files there (listed)."""
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / table.name
    if dest.resolve() != table.resolve():
        tmp = folder.parent / f".{table.name}.init-tmp"
        shutil.copyfile(table, tmp)
        tmp.replace(dest)
    for old in sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink()):
        if old != dest and old.suffix.lower() in SUFFIXES:
            old.unlink()
            say(f"removed {old} (previous dataset's raw file)")
    for d in sorted((d for d in folder.rglob("*") if d.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    return dest


# --- the command ---------------------------------------------------------------------------


@dataclass(frozen=True)
class InitResult:
    profile: Profile
    params: Path
    suite: Path
    table: Path
    md5: str


def run_init(
    root: Path,
    table: Path,
    *,
    target: str,
    positive_class: str | None = None,
    id_column: str | None = None,
    name: str | None = None,
    params_file: Path | None = None,
    say: Callable[[str], None] = print,
) -> InitResult:
    """Profile `table`, write params.yaml and the suite, place and pin the table."""
    root = root.resolve()
    params_file = (params_file or root / PARAMS_FILE).resolve()
    if table.suffix not in SUFFIXES:
        raise InitError(f"{table}: unsupported file type {table.suffix!r}; use CSV or Parquet")
    df = read_table(table)
    name = slug(name or table.stem)
    p = profile(df, target=target, name=name, positive_class=positive_class, id_column=id_column)

    say(f"{table}: {len(df)} rows, {len(df.columns)} columns -> dataset {name!r}")
    width = max(len(str(c)) for c in df.columns)
    for col in df.columns:
        role = (
            "target"
            if col == p.target
            else "id"
            if col == p.id_column
            else "numeric"
            if col in p.numeric
            else "categorical"
            if col in p.categorical
            else "left out"
        )
        say(f"  {col:<{width}}  {role:<11}  {p.reasons[col]}")
    for col, value in p.fill_values.items():
        say(
            f"  prepare.fill_values.{col}: {value} (the median; review: a documented value "
            "may be right)"
        )
    say(f"  slices: {p.slices or 'none (no categorical with 2-8 levels)'}")

    import yaml

    text = params_file.read_text()
    raw = yaml.safe_load(text)
    raw_data = Path(raw["paths"]["raw_data"])
    if raw_data.suffix.lower() in SUFFIXES:  # one file before: a folder from now on
        raw_data = raw_data.parent
    suite_rel = Path("expectations") / f"{name}.json"
    new_text = update_params(text, p, suite_rel, raw_data)
    try:
        parse_params(yaml.safe_load(new_text), params_file)
    except ConfigError as err:
        raise InitError(str(err)) from None

    suite_json = build_suite(df, p)
    suite_path = root / suite_rel
    suite_path.parent.mkdir(parents=True, exist_ok=True)
    suite_path.write_text(json.dumps(suite_json, indent=2, sort_keys=False) + "\n")
    say(f"wrote {suite_rel} ({len(suite_json['expectations'])} expectations, draft: review it)")
    params_file.write_text(new_text)
    shown = params_file.relative_to(root) if params_file.is_relative_to(root) else params_file
    say(f"wrote {shown}")

    dest = place_table(table.resolve(), root / raw_data, say)
    data_pin = root / raw["paths"]["data_pin"]
    md5 = pin(root, root / raw_data, data_pin)
    say(
        f"pinned {raw_data} in {data_pin.name} ({md5}); commit params.yaml, {suite_rel} and "
        f"{data_pin.name}, then `dvc repro`"
    )
    return InitResult(p, params_file, suite_path, dest, md5)
