"""The bearer token: every endpoint but /health (the docs and the schema included) needs it
once a token is set (`RETRAIN_SERVE_TOKEN`, or `create_app(token=...)`)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from retrain.serve.state import Served

bearer = HTTPBearer(auto_error=False)


async def require_token(  # async: a plain `def` dependency costs a thread hop per request
    state: Served,
    cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """401 unless the request carries `Authorization: Bearer <the token>` (no token: open)."""
    secret = state.token
    if secret is None:
        return
    if cred is None or not hmac.compare_digest(cred.credentials.encode(), secret.encode()):
        raise HTTPException(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})


Guarded = [Depends(require_token)]  # a router's `dependencies=`
