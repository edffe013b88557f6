"""The data contract: what a batch must be for every later `prepare` to read it unchanged.

Defined once, used twice: ingest checks a landed batch against the pinned data before it is
accepted (`contract_problem`), and `prepare` checks that the pinned files agree with each other
(`check_files_agree`), both through `Reference` and `kinds_problem`, so the two cannot disagree
about a column's type. Rules (docs/operations.md,
"The data contract"):

- the same columns as the pinned data, in any order (ingest stores them in the pinned order,
  `prepare` refuses files whose order differs);
- each column of the kind the pinned data has (integers, decimals, booleans, text), as the
  reader infers it: a text id beside integer ids makes `prepare` crash, decimals beside integers
  in a categorical column silently make new categories ("1.0" is not "1"). Numeric features
  only need to be numbers (`prepare` makes them all decimals); an all-empty column is no kind;
- ids present, unique within the batch and new: an id the pinned data holds would make
  `prepare` keep one of the two rows (file order decides) and drop the other without a word;
- no control character (NUL, line breaks, tabs ...) inside any value: a NUL makes the CSV
  reader cut the value ("3\\0" + "6" is read as 3);
- a target the task can train on (`target_problem`): a multiclass batch's classes are all in
  `dataset.classes` (the model has no output for another one), a regression target is
  numbers.

Every message is one line naming the file and the column; ids and an unknown class (a label
the batch brings) are shown, other values never (they may be personal data).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from retrain.config import DatasetSchema

# Control characters: never part of a tabular value. In a CSV's bytes \t, \n and \r may
# separate fields and lines, so the byte check (`CONTROL_BYTES`) leaves them to the parser and
# the value check (`CONTROL_CHARS`) finds them inside a parsed value.
CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
SHOWN_IDS = 5  # ids named in a collision message (then "... N in all")

_KIND_WORDS = {
    "integer": "integers",
    "decimal": "decimals",
    "boolean": "booleans",
    "text": "text",
}


def kind_of(values: pd.Series) -> str | None:
    """The kind of a column as the reader inferred it; None when every value is empty."""
    if values.isna().all():
        return None
    if pd.api.types.is_bool_dtype(values):
        return "boolean"
    if pd.api.types.is_integer_dtype(values):
        return "integer"
    if pd.api.types.is_float_dtype(values):
        return "decimal"
    return "text"


def kinds(df: pd.DataFrame) -> dict[str, str | None]:
    return {str(col): kind_of(df[col]) for col in df.columns}


@dataclass
class Reference:
    """What the pinned data says a batch must match: column order, kinds and the ids held.

    A column's kind is the one most pinned rows hold, so that a file that disagrees (one that
    reached the pinned data before this contract, or by hand) is the one named."""

    columns: list[str] = field(default_factory=list)
    rows_of_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    ids: set[object] = field(default_factory=set)

    @classmethod
    def of(cls, frames: Sequence[pd.DataFrame], id_column: str | None) -> Reference:
        """The reference of the pinned tables (the first one's column order); empty (no
        column rule, no id taken) when nothing is pinned yet."""
        ref = cls()
        for df in frames:
            ref.add(df, id_column)
        return ref

    @property
    def kinds(self) -> dict[str, str | None]:
        """Each column's kind: the one most rows hold (None: no value anywhere yet)."""
        return {
            col: max(n, key=lambda k: n[k]) if n else None for col, n in self.rows_of_kind.items()
        }

    def add(self, df: pd.DataFrame, id_column: str | None) -> None:
        """Take in a table now pinned (an accepted batch): its ids are no longer new."""
        if not self.columns:  # the first table pinned sets the order
            self.columns = [str(c) for c in df.columns]
        for col, kind in kinds(df).items():
            counts = self.rows_of_kind.setdefault(col, {})
            if kind is not None:  # an all-empty column agrees with any kind
                counts[kind] = counts.get(kind, 0) + len(df)
        if id_column and id_column in df.columns:
            self.ids.update(df[id_column].dropna().tolist())


def _compatible(col: str, pinned: str | None, got: str | None, numeric: Iterable[str]) -> bool:
    if pinned is None or got is None or pinned == got:
        return True
    number = {"integer", "decimal", "boolean"}
    return col in numeric and pinned in number and got in number


def kinds_problem(
    pinned: dict[str, str | None],
    df: pd.DataFrame,
    source: str,
    schema: DatasetSchema,
    against: str = "the pinned data holds",
) -> str | None:
    """One line when a column of `df` is of another kind than the pinned data's, else None."""
    for col, got in kinds(df).items():
        want = pinned.get(col)
        if col in pinned and not _compatible(col, want, got, schema.numeric):
            where = _first_row(df[col], want)
            return (
                f"{source}: column {col!r} holds {_KIND_WORDS[str(got)]}{where} where "
                f"{against} {_KIND_WORDS[str(want)]}"
            )
    return None


def _first_row(values: pd.Series, want: str | None) -> str:
    """' (e.g. row N)' for the first value that is not of the wanted kind, when findable."""
    if want in ("integer", "decimal"):
        bad = values.notna() & pd.to_numeric(values, errors="coerce").isna()
        if want == "integer" and not bad.any():
            numbers = pd.to_numeric(values, errors="coerce")
            bad = numbers.notna() & (numbers % 1 != 0)
        if bad.any():
            return f" (e.g. data row {int(bad.to_numpy().argmax()) + 1})"
    return ""


def empty_id_problem(df: pd.DataFrame, id_column: str, source: str) -> str | None:
    """One line when an id is empty (checked before kinds: a gap makes integer ids decimals)."""
    ids = df[id_column]
    if ids.isna().any():
        row = int(ids.isna().to_numpy().argmax()) + 1
        return f"{source}: column {id_column!r} is empty on data row {row}: every row needs an id"
    return None


def ids_problem(df: pd.DataFrame, id_column: str, source: str, pinned: set[object]) -> str | None:
    """One line when an id is repeated in the batch or already pinned, else None."""
    ids = df[id_column]
    repeated = ids[ids.duplicated()]
    if len(repeated):
        return (
            f"{source}: column {id_column!r} repeats {repeated.nunique()} id(s) within the "
            f"batch: {_show(repeated.unique().tolist())}"
        )
    taken = [i for i in ids.tolist() if i in pinned]
    if taken:
        return (
            f"{source}: column {id_column!r}: {len(taken)} id(s) already in the pinned data "
            f"({_show(taken)}): a batch brings new rows; an update of pinned rows is refused"
        )
    return None


def _show(ids: list[object]) -> str:
    shown = ", ".join(repr(i) for i in ids[:SHOWN_IDS])
    return shown + (f" ... {len(ids)} in all" if len(ids) > SHOWN_IDS else "")


def control_problem(df: pd.DataFrame, source: str) -> str | None:
    """One line naming the column and row of the first value holding a control character."""
    for col in df.columns:
        values = df[col]
        if kind_of(values) != "text":
            continue
        text = values.dropna().astype(str)
        hit = text.str.contains(CONTROL_CHARS)
        if hit.any():
            row = int(values.index.get_loc(hit.idxmax())) + 1
            char = CONTROL_CHARS.search(text[hit].iloc[0])
            code = ord(char.group()) if char else 0
            return (
                f"{source}: column {col!r} on data row {row} holds a control character "
                f"(0x{code:02x}): values must be plain text"
            )
    return None


def contract_problem(
    df: pd.DataFrame, source: str, schema: DatasetSchema, ref: Reference
) -> str | None:
    """The first way `df` breaks the contract, in one line naming file and column, or None.

    Args:
        df: the batch as the reader reads it (the same reader `prepare` uses).
        source: the batch's name in messages.
        schema: the dataset section (which column is the id, which are numeric).
        ref: the pinned data's reference; with no columns when nothing is pinned yet (then
            only the batch's own rules apply).
    """
    id_column = schema.id_column if schema.id_column in df.columns else None
    problem = control_problem(df, source)
    if problem is None and id_column:
        problem = empty_id_problem(df, id_column, source)
    if problem is None and ref.columns:
        problem = _columns_problem(df, source, schema, ref)
    if problem is None:
        problem = target_problem(df, source, schema)
    if problem is None and id_column:
        problem = ids_problem(df, id_column, source, ref.ids)
    return problem


def target_problem(df: pd.DataFrame, source: str, schema: DatasetSchema) -> str | None:
    """One line when the target holds what the task cannot train on, else None (also when
    the batch has no target: data to be scored). Multiclass: a class not in
    `dataset.classes` (the model has no output for it), named with its rows; regression: a
    value that is not a number. Binary targets are the suite's to check, as before."""
    if schema.target not in df.columns or schema.task == "binary":
        return None
    values = df[schema.target].dropna()
    if schema.task == "multiclass":
        classes = [str(c) for c in schema.classes or ()]
        known = set(classes)
        text = values.astype(str)
        unknown = text[~text.isin(known)]
        if len(unknown):
            counts = unknown.value_counts()
            first = str(counts.index[0])
            row = int(df.index.get_loc(unknown.index[0])) + 1
            more = f" (and {len(counts) - 1} other unknown class(es))" if len(counts) > 1 else ""
            return (
                f"{source}: column {schema.target!r} (target) has class {first!r} in "
                f"{int(counts.iloc[0])} row(s) (e.g. data row {row}){more}, not one of "
                f"dataset.classes {classes}: add it to dataset.classes and retrain, or "
                "fix the export"
            )
        return None
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna()
    if bad.any():
        row = int(df.index.get_loc(values.index[bad.to_numpy().argmax()])) + 1
        return (
            f"{source}: column {schema.target!r} (target) holds text on data row {row} where "
            "a regression target is a number"
        )
    return None


def _columns_problem(
    df: pd.DataFrame, source: str, schema: DatasetSchema, ref: Reference
) -> str | None:
    """The pinned columns, in the pinned order, each of its pinned kind."""
    got = [str(c) for c in df.columns]
    missing = sorted(set(ref.columns) - set(got))
    extra = sorted(set(got) - set(ref.columns))
    if missing or extra:
        return f"{source}: columns differ from the pinned data (extra {extra}, missing {missing})"
    if got != ref.columns:
        at = next(i for i, (a, b) in enumerate(zip(got, ref.columns, strict=True)) if a != b)
        return (
            f"{source}: columns are not in the pinned order (column {at + 1} is {got[at]!r}, "
            f"pinned {ref.columns[at]!r})"
        )
    return kinds_problem(ref.kinds, df, source, schema)


def check_files_agree(frames: Sequence[tuple[Path, pd.DataFrame]], schema: DatasetSchema) -> None:
    """For `prepare`: raise DataError when the pinned files disagree on a column's kind (a
    text id beside integer ids would otherwise crash the Parquet writer in many lines). The
    odd file is named: each column's kind is the one most rows hold, as for ingest."""
    from retrain.errors import DataError

    most = Reference.of([df for _, df in frames], None).kinds
    for path, df in frames:
        problem = kinds_problem(most, df, str(path), schema, "most rows of the pinned data hold")
        if problem:
            raise DataError(problem)
