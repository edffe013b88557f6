"""/predict (JSON rows) and /predict/batch (a CSV or Parquet table as the body).

Both score with the handle the rollout picks for the request's key (prod, or the canary for
its share of keys) and queue every scored row for the predictions log.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint's annotations, which
# name the request model `scoring_router` is given.
import io
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Body, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from retrain.scoring import Scores
from retrain.serve.auth import Authorized
from retrain.serve.checks import RowProblem
from retrain.serve.errors import RowsRejected, TooManyRows, Unavailable, UnsupportedMedia
from retrain.serve.log import Entry
from retrain.serve.model import ModelHandle
from retrain.serve.schema import Rejected, response_models
from retrain.serve.state import ServeState
from retrain.task import BinaryTask, Task

VERSION_HEADER = "X-Model-Version"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
PARQUET_TYPES = (PARQUET, "application/x-parquet", "application/parquet")

BATCH_DOC: dict[str, Any] = {
    "summary": "Score a CSV or Parquet table sent as the request body",
    "description": (
        "Content-Type `text/csv` or `application/vnd.apache.parquet`. The answer is JSON "
        "columns (the id column and what /predict answers per row: `probability`, `label` for "
        "a binary model; `class`, `probabilities` for a multiclass one; `prediction`, "
        "`interval` for a regression one), or Parquet when Accept names Parquet (the columns "
        "of `retrain predict`'s output)."
    ),
    "responses": {
        200: {"content": {PARQUET: {}}},
        413: {"description": "more rows than serve.max_rows"},
        415: {"description": "neither CSV nor Parquet"},
        422: {"model": Rejected},
    },
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "content": {
                CSV: {"schema": {"type": "string"}},
                PARQUET: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
}


def scoring_router(row: type[BaseModel], task: Task | None = None) -> APIRouter:
    """The scoring endpoints for rows of `row` (the request model of the dataset), answering
    as a model of `task` does (default: binary)."""
    router = APIRouter()
    one, many = response_models(task or BinaryTask())

    @router.post(
        "/predict",
        summary="Score one row (an object) or several (a list of objects)",
        response_model=one | many,
        responses={422: {"model": Rejected}, 503: {"description": "no model loaded"}},
    )
    async def predict(
        state: Authorized,
        body: Annotated[row | list[row], Body()],  # type: ignore[valid-type]
        x_request_key: Annotated[str | None, Header()] = None,
    ) -> Response:
        return await predict_rows(state, body, x_request_key)

    router.add_api_route("/predict/batch", predict_batch, methods=["POST"], **BATCH_DOC)
    return router


async def predict_rows(state: ServeState, body: Any, key: str | None) -> Response:
    """Check the rows (numpy first, the suite when that cannot prove them), then score."""
    rows = body if isinstance(body, list) else [body]
    if not rows:
        raise RowsRejected([RowProblem(None, "no rows", "the list of rows is empty")])
    if len(rows) > state.params.serve.max_rows:
        raise TooManyRows(len(rows), state.params.serve.max_rows)
    cols = columns_of(rows, state)
    problems = state.checker.columns(list(cols))
    # A frame only when Great Expectations must judge: a request the numpy checks pass
    # never builds one.
    if not problems and not state.checker.fast_pass(cols):
        frame = pd.DataFrame(cols, copy=False)
        problems = await run_in_threadpool(state.checker.check, frame, cols)
    if problems:
        raise RowsRejected(problems)
    id_col = state.id_column
    ids = cols.get(id_col) if id_col else None
    key = key or (str(ids[0]) if ids is not None else None)
    handle, scores = score(state, None, cols, key)
    scored = [
        {**answer, "id": None if ids is None else ids[i]} for i, answer in enumerate(scores.rows())
    ]
    content = (
        {**info(handle), "predictions": scored}
        if isinstance(body, list)
        else {**scored[0], **info(handle)}
    )
    return JSONResponse(content, headers={VERSION_HEADER: handle.version})


def columns_of(rows: list[Any], state: ServeState) -> dict[str, np.ndarray]:
    """The request's rows as one array per column: float64 with NaN, objects, string ids."""
    schema, id_col = state.schema, state.id_column
    cols: dict[str, np.ndarray] = {}
    if id_col and any(getattr(r, id_col) is not None for r in rows):
        ids = [getattr(r, id_col) for r in rows]
        cols[id_col] = np.array([None if v is None else str(v) for v in ids], dtype=object)
    for c in schema.numeric:
        cols[c] = np.array(
            [np.nan if (v := getattr(r, c)) is None else v for r in rows], dtype="float64"
        )
    for c in schema.categorical:
        cols[c] = np.array([getattr(r, c) for r in rows], dtype=object)
    return cols


def score(
    state: ServeState, df: pd.DataFrame | None, cols: dict[str, np.ndarray], key: str | None
) -> tuple[ModelHandle, Scores]:
    """Score with the handle picked for `key` and queue the rows for the log: a table
    through the predict flow's own pandas path, JSON rows (`df` None) through its bit-equal
    numpy twin."""
    handle = state.rollout.state.pick(key)
    if handle is None:
        raise Unavailable(state.rollout.state.error or "no model loaded")
    scores = handle.score(df, state.params) if df is not None else handle.score_columns(cols)
    entry = Entry(
        {c: cols[c] for c in state.logged if c in cols},
        scores.columns(),
        handle.version,
        handle.model_md5,
        datetime.now(UTC),
        key or secrets.token_hex(8),
    )
    state.log.append(entry)
    return handle, scores


def info(handle: ModelHandle) -> dict[str, Any]:
    """The served version, in every answer (and a binary model's decision threshold)."""
    out: dict[str, Any] = {
        "model_version": handle.version,
        "model": handle.served.label,
        "model_md5": handle.model_md5,
    }
    if handle.served.threshold is not None:
        out["threshold"] = handle.served.threshold
    return out


async def predict_batch(
    request: Request,
    state: Authorized,
    x_request_key: Annotated[str | None, Header()] = None,
) -> Response:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != CSV and kind not in PARQUET_TYPES:
        raise UnsupportedMedia(f"Content-Type {kind or 'none'!r}: send {CSV} or {PARQUET}")
    raw = await request.body()
    accept = request.headers.get("accept", "")
    return await run_in_threadpool(score_table, state, raw, kind, accept, x_request_key)


def read_table(state: ServeState, raw: bytes, kind: str) -> pd.DataFrame:
    """The body as a table of the dataset's columns (the target dropped), or a 422/413."""
    try:
        df = pd.read_csv(io.BytesIO(raw)) if kind == CSV else pd.read_parquet(io.BytesIO(raw))
    except Exception as err:  # parsers raise many kinds; the client needs the cause
        cause = str(err).splitlines()[0] if str(err) else type(err).__name__
        problem = RowProblem(None, "unreadable body", f"{kind} body: {cause}")
        raise RowsRejected([problem]) from err
    if df.empty:
        raise RowsRejected([RowProblem(None, "no rows", "the table has no rows")])
    if len(df) > state.params.serve.max_rows:
        raise TooManyRows(len(df), state.params.serve.max_rows)
    if state.schema.target in df.columns:
        df = df.drop(columns=[state.schema.target])
    return df


def score_table(
    state: ServeState, raw: bytes, kind: str, accept: str, key: str | None
) -> Response:
    """/predict/batch's work, in a worker thread: read, check, score, answer."""
    df = read_table(state, raw, kind)
    cols = {c: df[c].to_numpy() for c in df.columns}
    problems = state.checker.check(df, cols)  # the columns first, then their values
    if problems:
        raise RowsRejected(problems)
    id_col = state.id_column
    if id_col in cols:
        cols[id_col] = cols[id_col].astype(str).astype(object)
    key = key or (str(cols[id_col][0]) if id_col in cols else None)
    handle, scores = score(state, df, cols, key)
    headers = {VERSION_HEADER: handle.version}
    ids = {id_col: df[id_col].to_numpy()} if id_col and id_col in cols else {}
    if "parquet" in accept:
        table = pd.DataFrame({**ids, **scores.columns()}).assign(model_version=handle.version)
        buf = io.BytesIO()
        table.to_parquet(buf, index=False)
        return Response(buf.getvalue(), media_type=PARQUET, headers=headers)
    listed = {k: v.tolist() for k, v in ids.items()}
    content = {**info(handle), "rows": len(df), **listed, **scores.json_columns()}
    return JSONResponse(content, headers=headers)
