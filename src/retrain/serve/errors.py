"""What can go wrong with a request, as exceptions, and the one place that answers them.

Endpoints raise; `register` maps each exception to its status and body, so every 422 has
the same shape (`{"detail": [{"column", "problem", "message", "rows"}]}`, see
`schema.Rejected`) whether FastAPI's request model or the suite refused the request.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from retrain.serve.checks import RowProblem

NULL = "missing value (null or NaN)"  # the suite's word for it (checks.PROBLEMS)
_NULL_MSG = "null, but the dataset's suite requires a value in every row"


class Unavailable(Exception):
    """No model is loaded (nothing in prod yet, or it could not be materialised): 503."""


class RowsRejected(Exception):
    """The request's rows break the request model or the suite: 422 naming each column."""

    def __init__(self, problems: list[RowProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


class TooManyRows(Exception):
    """More rows than serve.max_rows: 413."""

    def __init__(self, n: int, limit: int) -> None:
        super().__init__(f"{n} rows: more than serve.max_rows ({limit}); split the request")


class UnsupportedMedia(Exception):
    """A /predict/batch body that is neither CSV nor Parquet: 415."""


def _column_problem(e: dict[str, Any], column: str | None) -> str:
    kind = str(e.get("type", ""))
    if kind == "missing":
        return "missing column"
    if kind == "extra_forbidden":
        return "unexpected column"
    if column and "input" in e and e["input"] is None:
        return NULL  # a column the suite never lets be null (the request model says so)
    return "wrong type" if column else "malformed request"


def pydantic_problems(errors: list[dict[str, Any]], body: Any) -> list[RowProblem]:
    """FastAPI's validation errors as column problems; of a union, the branch sent."""
    many = isinstance(body, list)
    out: dict[tuple[Any, ...], RowProblem] = {}
    for e in errors:
        loc = [p for p in e.get("loc", ()) if p != "body"]
        if loc and isinstance(loc[0], str) and loc[0].startswith("list["):
            if not many:
                continue
            loc = loc[1:]
        elif loc and isinstance(loc[0], str) and loc[0].endswith("Row"):
            if many:
                continue
            loc = loc[1:]
        row = loc[0] if loc and isinstance(loc[0], int) else None
        names = [p for p in loc if isinstance(p, str)]
        column = names[0] if names else None
        problem = _column_problem(e, column)
        where = f"row {row}: " if row is not None else ""
        what = f"column {column!r}: " if column else ""
        message = f"{where}{what}{_NULL_MSG if problem == NULL else e.get('msg', problem)}"
        key = (column, problem, row)
        out.setdefault(key, RowProblem(column, problem, message, () if row is None else (row,)))
    return list(out.values()) or [RowProblem(None, "malformed request", "body is not a row")]


def _detail(message: str, status: int) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def reject(problems: list[RowProblem]) -> JSONResponse:
    return JSONResponse({"detail": [p.to_dict() for p in problems]}, status_code=422)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return reject(pydantic_problems(list(exc.errors()), exc.body))


async def _rejected(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RowsRejected)
    return reject(exc.problems)


async def _too_many(request: Request, exc: Exception) -> JSONResponse:
    return _detail(str(exc), 413)


async def _media(request: Request, exc: Exception) -> JSONResponse:
    return _detail(str(exc), 415)


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    return _detail(str(exc), 503)


def register(app: FastAPI) -> None:
    """Answer each of the service's exceptions (and FastAPI's validation error) the same
    way on every endpoint."""
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(RowsRejected, _rejected)
    app.add_exception_handler(TooManyRows, _too_many)
    app.add_exception_handler(UnsupportedMedia, _media)
    app.add_exception_handler(Unavailable, _unavailable)
