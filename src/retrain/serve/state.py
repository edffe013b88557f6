"""What every request of one app needs, built once by `create_app` and injected.

Endpoints take `auth.Authorized` (an `Annotated` dependency): FastAPI hands them the app's
`ServeState`, kept on `app.state.serve`, once the token is checked. Nothing here is a module
global, so two apps (two checkouts, or a test's second app) never share a model, a log or a
token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from pydantic import BaseModel

from retrain.config import DatasetSchema, Params
from retrain.serve.checks import RequestChecker
from retrain.serve.log import PredictionLog
from retrain.serve.model import Rollout
from retrain.serve.schema import row_model
from retrain.task import Task, task_for

TOKEN_ENV = "RETRAIN_SERVE_TOKEN"


@dataclass(frozen=True)
class ServeState:
    """One service: its config, request model, checks, model rollout and predictions log.

    Attributes:
        token: the bearer token every endpoint but /health requires (None: no auth).
        poll: follow the registry in a background thread (tests call `rollout.poll()`).
        task: what the model predicts (`retrain.task`): how answers look.
    """

    params: Params
    row: type[BaseModel]
    checker: RequestChecker
    rollout: Rollout
    log: PredictionLog
    token: str | None
    poll: bool
    task: Task

    @property
    def schema(self) -> DatasetSchema:
        return self.params.dataset

    @property
    def id_column(self) -> str | None:
        return self.params.dataset.id_column

    @property
    def logged(self) -> list[str]:
        """The input columns written to the predictions log: the id (if any), features."""
        schema = self.params.dataset
        return ([schema.id_column] if schema.id_column else []) + schema.features


def build_state(root: Path, params: Params, poll: bool, token: str | None) -> ServeState:
    """The state of a service for the checkout at `root` (nothing started yet)."""
    schema = params.dataset
    checker = RequestChecker(schema.suite, schema)
    serve = params.serve
    id_col = [schema.id_column] if schema.id_column else []
    plog = PredictionLog(
        params.paths.predictions_log,
        serve.flush_s,
        serve.flush_rows,
        serve.keep_days,
        id_col + schema.features,
    )
    return ServeState(
        params=params,
        row=row_model(schema, checker.rules()),
        checker=checker,
        rollout=Rollout(root, params),
        log=plog,
        token=token if token is not None else os.environ.get(TOKEN_ENV) or None,
        poll=poll,
        task=task_for(params.dataset),
    )


def state_of(request: Request) -> ServeState:
    """The `ServeState` of the app serving `request` (set by `create_app`)."""
    state: ServeState = request.app.state.serve
    return state
