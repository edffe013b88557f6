"""The service's code stays something a reader can hold: no function longer than ~60 lines
(`create_app` was one 270-line function of closures), no private attribute of another
library (`DataFrame._from_arrays` was one), one router per concern."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

SERVE = REPO / "src" / "retrain" / "serve"
MAX_LINES = 60


def _trees() -> list[tuple[Path, ast.AST]]:
    return [(p, ast.parse(p.read_text())) for p in sorted(SERVE.rglob("*.py"))]


def test_no_function_in_serve_is_longer_than_60_lines():
    long = [
        f"{p.relative_to(REPO)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
        for p, tree in _trees()
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        and (n.end_lineno or n.lineno) - n.lineno + 1 > MAX_LINES
    ]
    assert not long, long


def test_serve_reads_no_private_attribute_of_another_object():
    """`x._name` only on `self`/`cls`: a private name of pandas, FastAPI, ... breaks on a
    minor release."""
    private = [
        f"{p.relative_to(REPO)}:{n.lineno} .{n.attr}"
        for p, tree in _trees()
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute)
        and n.attr.startswith("_")
        and not n.attr.startswith("__")
        and not (isinstance(n.value, ast.Name) and n.value.id in ("self", "cls"))
    ]
    private += [
        f"{p.relative_to(REPO)}:{n.lineno} from {n.module}"
        for p, tree in _trees()
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom)
        and not n.level
        and n.module
        and any(part.startswith("_") and not part.startswith("__") for part in n.module.split("."))
    ]
    assert not private, private


def test_each_concern_is_a_router():
    from fastapi import APIRouter

    from retrain.serve.routes import docs, health
    from retrain.serve.routes.scoring import scoring_router
    from retrain.serve.schema import row_model
    from tests.conftest import telco_schema

    routers = [health.router, docs.router, scoring_router(row_model(telco_schema()))]
    assert all(isinstance(r, APIRouter) for r in routers)
    paths = [{getattr(route, "path", "") for route in r.routes} for r in routers]
    assert paths[0] == {"/health", "/ready"}
    assert {"/docs", "/openapi.json"} <= paths[1]
    assert paths[2] == {"/predict", "/predict/batch"}
