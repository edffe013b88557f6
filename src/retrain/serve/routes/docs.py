"""/docs (Swagger UI) and /openapi.json, behind the bearer token like every endpoint but
/health, with Swagger UI's JavaScript and CSS served from the installed `swagger-ui-bundle`
package instead of a CDN: the page works on a machine with no internet (FastAPI's "Custom
Docs UI Static Assets (Self-Hosting)"). ReDoc ships no such package, so there is no /redoc.

The schema lists the dataset's columns with their levels: it is no more public than /predict.

swagger-ui-bundle 1.1 ships Swagger UI 4.15.5, which renders OpenAPI 3.0 only ("Unable to
render this definition" for FastAPI's 3.1): the page reads the same schema written as 3.0
(`openapi_30`: a nullable field says `nullable: true` instead of an `anyOf` with null), while
/openapi.json stays FastAPI's 3.1 for every other tool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from retrain.serve.auth import Guarded

ASSETS_URL = "/docs/assets"
OPENAPI_30_URL = "/docs/openapi-3.0.json"
# The files the page loads, and nothing else of the package (its own index.html, maps, ...).
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}

router = APIRouter(dependencies=Guarded, include_in_schema=False)


def _root(request: Request) -> str:
    """The path prefix a proxy mounts the app under (`--root-path`), for the page's URLs."""
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/openapi.json")
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get(OPENAPI_30_URL)
async def openapi_for_swagger_ui(request: Request) -> JSONResponse:
    return JSONResponse(openapi_30(request.app.openapi()))


def openapi_30(node: Any) -> Any:
    """An OpenAPI 3.1 document (or part) as 3.0 writes it: `anyOf` with `{"type": "null"}`
    becomes `nullable: true` (3.1 has no `nullable`, 3.0 no null type)."""
    if isinstance(node, list):
        return [openapi_30(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_30(v) for k, v in node.items()}
    if out.get("openapi", "").startswith("3.1"):
        out["openapi"] = "3.0.3"
    options = out.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        del out["anyOf"]
        if len(rest) == 1 and "$ref" not in rest[0]:  # 3.0 ignores a $ref's siblings
            out = {**rest[0], **out}
        else:
            out["anyOf"] = rest
        out["nullable"] = True
    return out


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}{OPENAPI_30_URL}",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon-32x32.png",
    )


@router.get(ASSETS_URL + "/{name}")
async def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(404, f"no asset {name!r}")
    return FileResponse(swagger_ui_dir() / name, media_type=ASSETS[name])


def swagger_ui_dir() -> Path:
    """Swagger UI's distribution as the `swagger-ui-bundle` package installs it."""
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))
