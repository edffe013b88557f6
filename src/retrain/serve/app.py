"""The FastAPI app: /health, /ready, /predict (JSON rows), /predict/batch (CSV or Parquet).

Built by `create_app(project_root, params)`, never at import. The model is the registry's
prod version, followed by a `Rollout` (see `retrain.serve.model`); each scored request is
queued for the predictions log (`retrain.serve.log`).
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint's annotations, which
# name the request model built in create_app.
import hmac
import io
import os
import secrets
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import Body, Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from retrain.config import Params
from retrain.serve.checks import RequestChecker, RowProblem
from retrain.serve.log import Entry, PredictionLog
from retrain.serve.model import ModelHandle, Rollout
from retrain.serve.schema import Rejected, ScoredMany, ScoredOne, row_model

TOKEN_ENV = "RETRAIN_SERVE_TOKEN"
VERSION_HEADER = "X-Model-Version"
KEY_HEADER = "X-Request-Key"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
PARQUET_TYPES = (PARQUET, "application/x-parquet", "application/parquet")


class _Unavailable(Exception):
    """No model is loaded (nothing in prod yet, or it could not be materialised)."""


def _reject(problems: list[RowProblem], status: int = 422) -> JSONResponse:
    return JSONResponse({"detail": [p.to_dict() for p in problems]}, status_code=status)


def _pydantic_problems(errors: list[dict[str, Any]], body: Any) -> list[RowProblem]:
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
        kind = str(e.get("type", ""))
        problem = {
            "missing": "missing column",
            "extra_forbidden": "unexpected column",
        }.get(kind, "wrong type" if column else "malformed request")
        where = f"row {row}: " if row is not None else ""
        what = f"column {column!r}: " if column else ""
        message = f"{where}{what}{e.get('msg', kind)}"
        key = (column, problem, row)
        out.setdefault(key, RowProblem(column, problem, message, () if row is None else (row,)))
    return list(out.values()) or [RowProblem(None, "malformed request", "body is not a row")]


def create_app(
    project_root: Path,
    params: Params,
    *,
    poll: bool = True,
    token: str | None = None,
) -> FastAPI:
    """The service for the checkout at `project_root` (params with absolute paths).

    Args:
        project_root: the git + DVC checkout whose registry names the prod version.
        params: `load_params_at(project_root)`.
        poll: follow the registry in a background thread (tests may call `rollout.poll()`).
        token: require `Authorization: Bearer <token>` on every endpoint but /health;
            default: the RETRAIN_SERVE_TOKEN environment variable, if set.
    """
    root = Path(project_root).resolve()
    schema = params.dataset
    Row = row_model(schema)
    checker = RequestChecker(params.dataset.suite, schema)
    id_col = schema.id_column
    logged = ([id_col] if id_col else []) + schema.features
    rollout = Rollout(root, params)
    plog = PredictionLog(
        params.paths.predictions_log,
        params.serve.flush_s,
        params.serve.flush_rows,
        params.serve.keep_days,
        logged,
    )
    secret = token if token is not None else os.environ.get(TOKEN_ENV) or None
    bearer = HTTPBearer(auto_error=False)

    async def auth(  # async: a plain `def` dependency costs a thread hop per request
        cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if secret is None:
            return
        if cred is None or not hmac.compare_digest(cred.credentials.encode(), secret.encode()):
            raise HTTPException(
                401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}
            )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(rollout.poll)
        # The first 422 would otherwise wait seconds for Great Expectations to import.
        threading.Thread(target=checker.warm, name="warm-ge", daemon=True).start()
        if poll:
            rollout.start()
        plog.start()
        try:
            yield
        finally:
            rollout.stop()
            plog.close()

    app = FastAPI(
        title=f"retrain: {schema.name}",
        description=(
            f"Scores rows of `{schema.name}` with the registry's `{params.registry.stage}` "
            f"version of `{params.registry.model_name}`. Bad rows get 422 naming the column."
        ),
        lifespan=lifespan,
    )
    app.state.rollout = rollout
    app.state.log = plog
    app.state.checker = checker

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _reject(_pydantic_problems(list(exc.errors()), getattr(exc, "body", None)))

    def columns_of(rows: list[Any]) -> dict[str, np.ndarray]:
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
        df: pd.DataFrame | None, cols: dict[str, np.ndarray], key: str | None
    ) -> tuple[ModelHandle, np.ndarray, np.ndarray]:
        """Score with the handle picked for `key`: a table through the predict flow's own
        pandas path, JSON rows (`df` None) through its bit-equal numpy twin."""
        handle = rollout.state.pick(key)
        if handle is None:
            raise _Unavailable(rollout.state.error or "no model loaded")
        proba, label = handle.score(df, params) if df is not None else handle.score_columns(cols)
        plog.append(
            Entry(
                {c: cols[c] for c in logged if c in cols},
                proba,
                label,
                handle.version,
                handle.model_md5,
                datetime.now(UTC),
                key or secrets.token_hex(8),
            )
        )
        return handle, proba, label

    def info(handle: ModelHandle) -> dict[str, Any]:
        return {
            "model_version": handle.version,
            "model": handle.served.label,
            "model_md5": handle.model_md5,
            "threshold": handle.served.threshold,
        }

    @app.exception_handler(_Unavailable)
    async def unavailable(request: Request, exc: _Unavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.get("/health", summary="The process is alive")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="A model is loaded: its registry version and md5")
    async def ready(_: Annotated[None, Depends(auth)]) -> JSONResponse:
        state = rollout.state
        body = {
            "ready": state.prod is not None,
            "stage": params.registry.stage,
            "prod": state.prod.describe() if state.prod else None,
            "canary": None
            if state.canary is None
            else {**state.canary.describe(), "share": state.canary_share},
            "error": state.error,
            "swaps": rollout.swaps,
            "validation_warm": checker.warmed,
            "poll_s": params.serve.poll_s,
            "log": {
                "folder": str(params.paths.predictions_log),
                "rows_written": plog.written,
                "rows_dropped": plog.dropped,
                "files": plog.files,
            },
        }
        return JSONResponse(body, status_code=200 if state.prod is not None else 503)

    @app.post(
        "/predict",
        summary="Score one row (an object) or several (a list of objects)",
        response_model=ScoredOne | ScoredMany,
        responses={422: {"model": Rejected}, 503: {"description": "no model loaded"}},
    )
    async def predict(
        _: Annotated[None, Depends(auth)],
        body: Annotated[Row | list[Row], Body()],  # type: ignore[valid-type]
        x_request_key: Annotated[str | None, Header()] = None,
    ) -> Response:
        rows = body if isinstance(body, list) else [body]
        if not rows:
            return _reject([RowProblem(None, "no rows", "the list of rows is empty")])
        if len(rows) > params.serve.max_rows:
            return _too_many(len(rows), params.serve.max_rows)
        cols = columns_of(rows)
        problems = checker.columns(list(cols))
        # A frame only when a check needs one (a row condition on a null, or Great
        # Expectations): a request that passes the numpy checks never builds one.
        if not problems and not checker.fast_pass(cols):
            df = _frame(cols)
            if not checker.fast_pass(cols, df):
                problems = await run_in_threadpool(checker.check, df, cols)
        if problems:
            return _reject(problems)
        key = x_request_key or (str(cols[id_col][0]) if id_col in cols else None)
        handle, proba, label = score(None, cols, key)
        ids = cols.get(id_col) if id_col else None
        scored = [
            {
                "probability": float(p),
                "label": int(y),
                "id": None if ids is None else ids[i],
            }
            for i, (p, y) in enumerate(zip(proba, label, strict=True))
        ]
        content = (
            {**scored[0], **info(handle)}
            if not isinstance(body, list)
            else {**info(handle), "predictions": scored}
        )
        return JSONResponse(content, headers={VERSION_HEADER: handle.version})

    @app.post(
        "/predict/batch",
        summary="Score a CSV or Parquet table sent as the request body",
        description=(
            "Content-Type `text/csv` or `application/vnd.apache.parquet`. The answer is JSON "
            "columns (probability, label, id), or Parquet when Accept names Parquet."
        ),
        responses={
            200: {"content": {PARQUET: {}}},
            413: {"description": "more rows than serve.max_rows"},
            415: {"description": "neither CSV nor Parquet"},
            422: {"model": Rejected},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    CSV: {"schema": {"type": "string"}},
                    PARQUET: {"schema": {"type": "string", "format": "binary"}},
                },
            }
        },
    )
    async def predict_batch(
        request: Request,
        _: Annotated[None, Depends(auth)],
        x_request_key: Annotated[str | None, Header()] = None,
    ) -> Response:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != CSV and kind not in PARQUET_TYPES:
            return JSONResponse(
                {"detail": f"Content-Type {kind or 'none'!r}: send {CSV} or {PARQUET}"},
                status_code=415,
            )
        raw = await request.body()
        accept = request.headers.get("accept", "")
        return await run_in_threadpool(_batch, raw, kind, accept, x_request_key)

    def _batch(raw: bytes, kind: str, accept: str, key: str | None) -> Response:
        try:
            df = pd.read_csv(io.BytesIO(raw)) if kind == CSV else pd.read_parquet(io.BytesIO(raw))
        except Exception as err:  # parsers raise many kinds; the client needs the cause
            cause = str(err).splitlines()[0] if str(err) else type(err).__name__
            return _reject([RowProblem(None, "unreadable body", f"{kind} body: {cause}")])
        if df.empty:
            return _reject([RowProblem(None, "no rows", "the table has no rows")])
        if len(df) > params.serve.max_rows:
            return _too_many(len(df), params.serve.max_rows)
        if schema.target in df.columns:
            df = df.drop(columns=[schema.target])
        problems = checker.columns(list(df.columns))
        if problems:
            return _reject(problems)
        cols = {c: df[c].to_numpy() for c in df.columns}
        problems = checker.check(df, cols)
        if problems:
            return _reject(problems)
        if id_col in cols:
            cols[id_col] = cols[id_col].astype(str).astype(object)
        key = key or (str(cols[id_col][0]) if id_col in cols else None)
        handle, proba, label = score(df, cols, key)
        headers = {VERSION_HEADER: handle.version}
        out: dict[str, Any] = {"probability": proba, "label": label}
        if id_col and id_col in cols:
            out = {id_col: df[id_col].to_numpy(), **out}
        if "parquet" in accept:
            table = pd.DataFrame(out)
            table["model_version"] = handle.version
            buf = io.BytesIO()
            table.to_parquet(buf, index=False)
            return Response(buf.getvalue(), media_type=PARQUET, headers=headers)
        content = {
            **info(handle),
            "rows": len(df),
            **{k: v.tolist() for k, v in out.items()},
        }
        return JSONResponse(content, headers=headers)

    return app


def _frame(cols: dict[str, np.ndarray]) -> pd.DataFrame:
    """A DataFrame over the columns without copying or re-checking them.

    pandas' public constructor spends ~0.4 ms validating a one-row dict, a quarter of the
    overhead budget of a request; `_from_arrays` (pandas' own fast path, private but stable
    through 2.x) skips that. Public constructor if it ever goes away.
    """
    try:
        return pd.DataFrame._from_arrays(
            list(cols.values()),
            columns=pd.Index(list(cols)),
            index=pd.RangeIndex(len(next(iter(cols.values())))),
            verify_integrity=False,
        )
    except (AttributeError, TypeError):
        return pd.DataFrame(cols, copy=False)


def _too_many(n: int, limit: int) -> JSONResponse:
    return JSONResponse(
        {"detail": f"{n} rows: more than serve.max_rows ({limit}); split the request"},
        status_code=413,
    )
