"""/health (is the process alive; never needs a token) and /ready (which model serves)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from retrain.serve.auth import Authorized
from retrain.serve.state import ServeState

router = APIRouter()


@router.get("/health", summary="The process is alive")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="A model is loaded: its registry version and md5")
async def ready(state: Authorized) -> JSONResponse:
    loaded = state.rollout.state.prod is not None
    return JSONResponse(readiness(state), status_code=200 if loaded else 503)


def readiness(state: ServeState) -> dict[str, Any]:
    """What /ready answers: the versions served, the last registry error, the log's counters."""
    now, params, plog = state.rollout.state, state.params, state.log
    return {
        "ready": now.prod is not None,
        "stage": params.registry.stage,
        "prod": now.prod.describe() if now.prod else None,
        "canary": None
        if now.canary is None
        else {**now.canary.describe(), "share": now.canary_share},
        "error": now.error,
        "swaps": state.rollout.swaps,
        "validation_warm": state.checker.warmed,
        "poll_s": params.serve.poll_s,
        "log": {
            "folder": str(params.paths.predictions_log),
            "rows_written": plog.written,
            "rows_dropped": plog.dropped,
            "files": plog.files,
        },
    }
