"""`retrain serve`: the app under uvicorn, on loopback unless told otherwise."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from retrain.config import Params

NO_AUTH = (
    "warning: {host} exposes the service beyond this machine and it has no authentication. "
    "Put it behind a reverse proxy that authenticates (TLS + auth), or set "
    "RETRAIN_SERVE_TOKEN so that every request but /health needs 'Authorization: Bearer "
    "<token>'."
)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str) -> str | None:
    """What to tell a user who binds beyond loopback (None on loopback)."""
    if is_loopback(host):
        return None
    if os.environ.get("RETRAIN_SERVE_TOKEN"):
        return (
            f"warning: {host} exposes the service beyond this machine; requests need the "
            "bearer token in RETRAIN_SERVE_TOKEN, but travel unencrypted: put a TLS proxy "
            "in front."
        )
    return NO_AUTH.format(host=host)


def serve(root: Path, params: Params, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the service until interrupted (Ctrl-C or SIGTERM: the log is flushed first)."""
    import logging

    import uvicorn

    from retrain.serve.app import create_app

    # The service's own lines (which version is served, registry errors) beside uvicorn's.
    logger = logging.getLogger("retrain.serve")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    app = create_app(root, params)
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info")
