"""The service's HTTP surface that needs no trained model: the request model's strict types,
the OpenAPI schema derived from the dataset's suite, the token on /docs and /openapi.json,
and `retrain serve`'s address checks. A bare checkout (params.yaml, the suite, an empty git
repo): nothing in prod, so a valid row gets 503 and an invalid one 422."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from retrain.config import load_params_at
from tests.conftest import REPO, telco_params

ROW: dict[str, Any] = {
    "customer_id": "7590-VHVEG",
    "tenure": 1,
    "monthly_charges": 29.85,
    "total_charges": 29.85,
    "female": 1,
    "senior_citizen": 0,
    "partner": 1,
    "dependents": 0,
    "phone_service": 0,
    "paperless_billing": 1,
    "multiple_lines": "No phone service",
    "internet_service": "DSL",
    "online_security": "No",
    "online_backup": "Yes",
    "device_protection": "No",
    "tech_support": "No",
    "streaming_tv": "No",
    "streaming_movies": "No",
    "contract": "Month-to-month",
    "payment_method": "Electronic check",
}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A Telco checkout with no model: params.yaml, the suite, an empty git repository."""
    root = tmp_path_factory.mktemp("bare")
    raw = telco_params()
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    suite = Path(raw["dataset"]["suite"])
    (root / suite).parent.mkdir(parents=True)
    shutil.copy(REPO / suite, root / suite)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


@contextmanager
def _client(checkout: Path, token: str | None = None) -> Iterator[TestClient]:
    from retrain.serve.app import create_app

    app = create_app(checkout, load_params_at(checkout), poll=False, token=token)
    with TestClient(app) as client:
        yield client
    # The lifespan imports Great Expectations in a thread: let it finish before the next
    # test imports it too (two imports at once leave GE half initialised).
    app.state.checker.warm()


@pytest.fixture(scope="module")
def client(checkout) -> Iterator[TestClient]:
    with _client(checkout) as c:
        yield c


def _suite(checkout: Path) -> list[dict[str, Any]]:
    params = load_params_at(checkout)
    return json.loads(params.dataset.suite.read_text())["expectations"]


def test_a_valid_row_reaches_the_model_and_there_is_none(client):
    resp = client.post("/predict", json=ROW)
    assert resp.status_code == 503 and "no version" in resp.json()["detail"]


@pytest.mark.parametrize("value", [True, False, "1", "0"])
def test_a_json_bool_or_string_for_a_numeric_column_is_a_422_naming_it(client, value):
    """`true` is not 1 (lax pydantic made it 1.0 and scored it)."""
    for column in ("female", "tenure"):
        for body, row in (({**ROW, column: value}, None), ([ROW, {**ROW, column: value}], 1)):
            resp = client.post("/predict", json=body)
            assert resp.status_code == 422, resp.text
            (problem,) = resp.json()["detail"]
            assert (problem["column"], problem["problem"]) == (column, "wrong type")
            assert column in problem["message"]
            assert problem["rows"] == ([] if row is None else [row])


def test_a_null_where_the_suite_needs_a_value_is_a_missing_value(client):
    resp = client.post("/predict", json=[ROW, {**ROW, "contract": None}])
    assert resp.status_code == 422
    (problem,) = resp.json()["detail"]
    assert (problem["column"], problem["problem"], problem["rows"]) == (
        "contract",
        "missing value (null or NaN)",
        [1],
    )
    # A new customer's blank total is a row the suite accepts: the model is the only gap.
    new = {**ROW, "tenure": 0, "total_charges": None}
    assert client.post("/predict", json=new).status_code == 503


def test_openapi_documents_what_the_suite_demands(client, checkout):
    """Nullable only where the suite lets a null through, each in-set column's levels as an
    enum, 0/1 flags as integers, bounds: read from the suite, not written in the code."""
    params = load_params_at(checkout)
    row = client.get("/openapi.json").json()["components"]["schemas"]["TelcoChurnRow"]
    assert set(row["required"]) == set(params.dataset.features)
    props = row["properties"]
    suite = _suite(checkout)
    never_null = {
        e["kwargs"]["column"]
        for e in suite
        if e["type"] == "expect_column_values_to_not_be_null" and len(e["kwargs"]) == 1
    }
    levels = {
        e["kwargs"]["column"]: e["kwargs"]["value_set"]
        for e in suite
        if e["type"] == "expect_column_values_to_be_in_set"
    }
    for c in params.dataset.features:
        spec = props[c]
        if c in never_null:
            assert "anyOf" not in spec and "null" not in json.dumps(spec), (c, spec)
            kinds = [spec]
        else:
            kinds = spec["anyOf"]
            assert {"type": "null"} in kinds, (c, spec)
        (values,) = [k for k in kinds if k != {"type": "null"}]
        if c in params.dataset.categorical:
            assert values["type"] == "string" and values["enum"] == levels[c], (c, spec)
        elif c in levels:  # a 0/1 flag
            assert (values["type"], values["enum"]) == ("integer", levels[c]), (c, spec)
        else:
            assert values["type"] == "number", (c, spec)
    # On Telco: the flags, a new customer's blank total, the levels of the contract.
    assert props["female"] == {
        "type": "integer",
        "enum": [0, 1],
        "title": "Female",
        "description": "numeric feature",
    }
    assert props["tenure"]["type"] == "number" and props["tenure"]["maximum"] == 120
    assert {"type": "null"} in props["total_charges"]["anyOf"]
    assert props["contract"]["enum"] == ["Month-to-month", "One year", "Two year"]


def test_the_token_guards_the_docs_and_the_schema_too(checkout):
    """The README's rule, over HTTP: every endpoint but /health needs the bearer token."""
    ok = {"Authorization": "Bearer s3cret"}
    paths = ["/docs", "/openapi.json", "/docs/assets/swagger-ui-bundle.js", "/ready"]
    with _client(checkout, token="s3cret") as c:
        assert c.get("/health").status_code == 200
        for path in paths:
            assert c.get(path).status_code == 401, path
            assert c.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert c.post("/predict", json=ROW).status_code == 401
        assert c.get("/docs", headers=ok).status_code == 200
        assert "TelcoChurnRow" in c.get("/openapi.json", headers=ok).text
        assert c.post("/predict", json=ROW, headers=ok).status_code == 503  # no model here


def test_every_route_but_health_checks_the_token(checkout):
    """Whatever route is added later: the state comes only through `authorized`."""
    from fastapi.routing import APIRoute

    from retrain.serve.auth import authorized
    from retrain.serve.routes import docs, health
    from retrain.serve.routes.scoring import scoring_router
    from retrain.serve.schema import row_model

    def calls(dependant: Any) -> list[Any]:
        return [dependant.call] + [c for d in dependant.dependencies for c in calls(d)]

    schema = load_params_at(checkout).dataset
    routers = [health.router, docs.router, scoring_router(row_model(schema))]
    routes = {
        r.path: calls(r.dependant)
        for router in routers
        for r in router.routes
        if isinstance(r, APIRoute)
    }
    assert {"/health", "/ready", "/predict", "/predict/batch", "/docs", "/openapi.json"} <= set(
        routes
    )
    unguarded = [p for p, called in routes.items() if authorized not in called]
    assert unguarded == ["/health"]


def test_two_apps_in_one_process_keep_their_own_state(checkout):
    """State is injected per app (`app.state.serve`), never a module global."""
    from retrain.serve.app import create_app

    params = load_params_at(checkout)
    apps = {t: TestClient(create_app(checkout, params, poll=False, token=t)) for t in "ab"}
    for mine, theirs in ("ab", "ba"):
        c = apps[mine]
        assert c.get("/openapi.json", headers={"Authorization": f"Bearer {mine}"}).is_success
        assert (
            c.get("/openapi.json", headers={"Authorization": f"Bearer {theirs}"}).status_code
            == 401
        )


def test_docs_load_swagger_ui_from_the_service_itself(client):
    """No CDN: the page's script and stylesheet are served by the app (offline-safe); there
    is no /redoc (ReDoc ships no installable bundle)."""
    page = client.get("/docs")
    assert page.status_code == 200
    loads = [u for u in page.text.split('"') if u.endswith((".js", ".css", ".png"))]
    assert loads and all(u.startswith("/docs/assets/") for u in loads), loads
    for url in loads:
        asset = client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 500, url
    js = client.get("/docs/assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in js.text and js.headers["content-type"].startswith("text/java")
    assert client.get("/docs/assets/index.html").status_code == 404  # only what the page loads
    assert client.get("/redoc").status_code == 404
    # Swagger UI 4 renders OpenAPI 3.0 only: the page reads the schema written as 3.0.
    assert "url: '/docs/openapi-3.0.json'" in page.text
    spec = client.get("/docs/openapi-3.0.json").json()
    assert spec["openapi"].startswith("3.0") and '{"type": "null"}' not in json.dumps(spec)
    row = spec["components"]["schemas"]["TelcoChurnRow"]["properties"]
    assert row["total_charges"]["nullable"] is True and row["total_charges"]["type"] == "number"
    assert "nullable" not in row["tenure"] and row["contract"]["enum"][0] == "Month-to-month"
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")  # FastAPI's own


def _serve(checkout: Path, *args: str) -> Any:
    """`retrain serve ARGS` in this process (typer's runner: stdout and stderr apart)."""
    from typer.testing import CliRunner

    from retrain.cli import app

    return CliRunner().invoke(app, ["serve", "--params", str(checkout / "params.yaml"), *args])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--port", "99999"], "--port 99999"),
        (["--port", "-1"], "--port -1"),
        (["--host", "999.1.1.1"], "--host 999.1.1.1"),
        (["--host", "192.0.2.1"], "192.0.2.1"),  # TEST-NET-1: no interface of this machine
    ],
)
def test_an_address_that_cannot_be_served_is_one_line_and_no_serving_line(checkout, args, says):
    """`--port 99999` used to say it served on :99999 and bind another port; a bad host
    printed the serving line before the error."""
    result = _serve(checkout, *args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""  # no "serving ... on ..." line
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and says in line, line


def test_a_port_in_use_is_one_line_too(checkout):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve(checkout, "--port", str(port))
    assert result.exit_code == 1 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line == f"error: cannot serve on 127.0.0.1:{port}: Address already in use", line
