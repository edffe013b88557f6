"""The service's background threads, started and stopped with the app (FastAPI lifespan).

- the registry poll (`Rollout.start`): follows GTO's prod and canary stages;
- the predictions log writer (`PredictionLog.start`): drains the request queue to Parquet;
- a one-off warm-up that imports Great Expectations, so that the first 422 does not wait
  seconds for it.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from retrain.serve.state import ServeState


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the served version first (a request never finds none because of start-up), then
    run the threads until shutdown; the log is flushed on the way out."""
    state: ServeState = app.state.serve
    await run_in_threadpool(state.rollout.poll)
    threading.Thread(target=state.checker.warm, name="warm-ge", daemon=True).start()
    if state.poll:
        state.rollout.start()
    state.log.start()
    try:
        yield
    finally:
        state.rollout.stop()
        state.log.close()
