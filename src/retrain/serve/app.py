"""The FastAPI app: /health, /ready, /predict (JSON rows), /predict/batch (CSV or Parquet),
/docs and /openapi.json.

Built by `create_app(project_root, params)`, never at import. The model is the registry's
prod version, followed by a `Rollout` (see `retrain.serve.model`); each scored request is
queued for the predictions log (`retrain.serve.log`). The pieces, each in its module:
`state` (what requests need, injected), `auth` (the bearer token), `errors` (exceptions and
their answers), `lifespan` (the background threads), `routes/` (one router per concern).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from retrain.config import Params
from retrain.serve import errors
from retrain.serve.lifespan import lifespan
from retrain.serve.routes import docs, health
from retrain.serve.routes.scoring import scoring_router
from retrain.serve.state import TOKEN_ENV, build_state

__all__ = ["TOKEN_ENV", "create_app"]


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
        token: require `Authorization: Bearer <token>` on every endpoint but /health (the
            docs and the schema included); default: the RETRAIN_SERVE_TOKEN environment
            variable, if set.
    """
    state = build_state(Path(project_root).resolve(), params, poll, token)
    schema = params.dataset
    app = FastAPI(
        title=f"retrain: {schema.name}",
        description=(
            f"Scores rows of `{schema.name}` with the registry's `{params.registry.stage}` "
            f"version of `{params.registry.model_name}`. Bad rows get 422 naming the column."
        ),
        lifespan=lifespan,
        # Served by routes/docs.py: behind the token, with self-hosted Swagger UI assets.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.serve = state
    # The parts tests and bench/serving.py drive directly (e.g. `rollout.poll()`).
    app.state.rollout, app.state.log, app.state.checker = state.rollout, state.log, state.checker
    errors.register(app)
    # Scoring first: a request is matched against the routers in order (the hot path).
    app.include_router(scoring_router(state.row, state.task))
    app.include_router(health.router)
    app.include_router(docs.router)
    return app
