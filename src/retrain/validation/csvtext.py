"""Is a landed CSV complete, comma-separated UTF-8 text of plain values? One line if not.

These checks read the bytes themselves, before any table reader: a reader would guess an
encoding, split on a wrong delimiter, take a cut last line as a row, or end a value at a NUL.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from retrain.validation.contract import CONTROL_BYTES

_SEPARATORS = (";", "\t", "|")


def _column_at(data: bytes, offset: int) -> tuple[int, str]:
    """(line number, "column 'x'") of the byte at `offset`, for messages."""
    start = data.rfind(b"\n", 0, offset) + 1
    line_no = data.count(b"\n", 0, offset) + 1
    header = next(csv.reader([data.split(b"\n", 1)[0].decode("latin-1")]), [])
    before = data[start:offset].decode("latin-1")
    index = len(next(csv.reader([before + "x"]))) - 1
    column = f"column {header[index]!r}" if index < len(header) else "a column"
    return line_no, column


def utf8_problem(data: bytes, name: str) -> str | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line_no, column = _column_at(data, err.start)
        return (
            f"{name}: {column} on line {line_no} is not UTF-8 (byte 0x{data[err.start]:02x}; "
            "latin-1/cp1252?): save the file as UTF-8"
        )
    return None


def control_problem(data: bytes, name: str) -> str | None:
    """A NUL or another control byte anywhere: the CSV reader would cut or mangle the value."""
    hit = CONTROL_BYTES.search(data)
    if hit is None:
        return None
    line_no, column = _column_at(data, hit.start())
    return (
        f"{name}: {column} on line {line_no} holds a control byte (0x{data[hit.start()]:02x}): "
        "values must be plain text"
    )


def _layout_problem(text: str, name: str) -> str | None:
    """Another separator than ',', or a last line without its line break."""
    first = text.split("\n", 1)[0].rstrip("\r")
    header = next(csv.reader([first]))
    if len(header) == 1:
        for sep in _SEPARATORS:
            if sep in first:
                return (
                    f"{name}: columns are separated by {sep!r}, not ',' (the header is one "
                    f"column holding {first.count(sep)} {sep!r}): save it comma-separated"
                )
    if not text.endswith("\n"):
        line_no = text.count("\n") + 1
        return (
            f"{name}: line {line_no} (the last) has no line break: the file is truncated or "
            "still being written"
        )
    return None


@contextmanager
def field_limit(size: int) -> Iterator[None]:
    """Let the csv module read a field as large as the whole file (`size`), so that this
    module, not the parser, decides what is too large and names the column (the parser's own
    limit raised an error that left the file skipped on every run). Process-wide, so restored
    at once."""
    before = csv.field_size_limit()
    csv.field_size_limit(max(before, size + 1))
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _value_problem(
    row: list[str], header: list[str], line_no: int, name: str, limit: int
) -> str | None:
    """A value of `row` larger than `limit` bytes or holding a line break (checked per row in
    C, then per value only for a row that has one)."""
    joined = "".join(row)
    if max(map(len, row), default=0) * 4 <= limit and "\n" not in joined and "\r" not in joined:
        return None
    for i, value in enumerate(row):
        column = f"column {header[i]!r}" if i < len(header) else "a column"
        size = len(value.encode())
        if size > limit:
            return (
                f"{name}: {column} on line {line_no} holds a value of {size} bytes, over the "
                f"limit of {limit} (params.yaml ingest.max_field_bytes)"
            )
        if "\n" in value or "\r" in value:
            return (
                f"{name}: {column} ending on line {line_no} holds a line break inside a "
                "quoted value: values must be plain text"
            )
    return None


def _rows_problem(text: str, name: str, max_field_bytes: int) -> str | None:
    """A row with another field count than the header, or a value too large or holding a
    line break."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    problem = _value_problem(header, header, 1, name, max_field_bytes)
    for row in reader:
        if problem:
            return problem
        if row and len(row) != len(header):
            return (
                f"{name}: line {reader.line_num} has {len(row)} fields, the header "
                f"{len(header)}: a truncated or malformed line"
            )
        problem = _value_problem(row, header, reader.line_num, name, max_field_bytes)
    return problem


def csv_problem(path: Path, name: str, max_field_bytes: int) -> str | None:
    """A one-line reason when a CSV is not complete, comma-separated UTF-8 text of plain
    values no larger than `max_field_bytes`, else None."""
    data = path.read_bytes()
    if not data.strip():
        return None  # the reader says "file is empty"
    problem = utf8_problem(data, name) or control_problem(data, name)
    if problem:
        return problem
    text = data.decode("utf-8")
    problem = _layout_problem(text, name)
    if problem:
        return problem
    try:
        with field_limit(len(data)):
            return _rows_problem(text, name, max_field_bytes)
    except csv.Error as err:  # what the parser cannot read, the reader would misread
        return f"{name}: not a readable CSV ({err})"
