"""`retrain serve`: the app under uvicorn, on loopback unless told otherwise."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

from retrain.config import Params
from retrain.errors import RetrainError

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


class BindError(RetrainError):
    """The address cannot be served: a port outside 0-65535, a host that does not resolve
    to this machine, a port in use."""


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host`:`port` (port 0: one the system picks), not listening yet.

    Bound here, before anything says "serving", so that a bad address is one line and a
    non-zero exit, and the line names the port really bound.
    """
    if not 0 <= port <= 65535:  # uvicorn started anyway, on another port (issue 25)
        raise BindError(f"--port {port}: a TCP port is 1-65535 (0: any free port)")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as err:
        raise BindError(f"--host {host}: not an address to serve on ({err})") from err
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise BindError(f"cannot serve on {host}:{port}: {err.strerror or err}") from err
    return sock


def url(sock: socket.socket) -> str:
    """http://host:port of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(root: Path, params: Params, sock: socket.socket) -> None:
    """Run the service on the bound `sock` until interrupted (Ctrl-C or SIGTERM: the log is
    flushed first)."""
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
    config = uvicorn.Config(app, access_log=False, log_level="info")
    uvicorn.Server(config).run(sockets=[sock])
