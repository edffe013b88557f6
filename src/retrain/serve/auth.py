"""The bearer token: every endpoint but /health (the docs and the schema included) needs it
once a token is set (`RETRAIN_SERVE_TOKEN`, or `create_app(token=...)`).

`Authorized` is how an endpoint gets the app's `ServeState`: one dependency that checks the
token and injects the state, so no endpoint can hold the state without the check (a test
walks every route), and a request solves one dependency for both.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from retrain.serve.state import ServeState, state_of

bearer = HTTPBearer(auto_error=False)


async def authorized(  # async: a plain `def` dependency costs a thread hop per request
    request: Request,
    cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ServeState:
    """The app's state, once the request carries `Authorization: Bearer <the token>` (401
    otherwise; no token set: every request)."""
    state = state_of(request)
    secret = state.token
    if secret is None:
        return state
    if cred is None or not hmac.compare_digest(cred.credentials.encode(), secret.encode()):
        raise HTTPException(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
    return state


Authorized = Annotated[ServeState, Depends(authorized)]
Guarded = [Depends(authorized)]  # a router's `dependencies=`, for endpoints without state
