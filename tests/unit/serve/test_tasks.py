"""`retrain serve` answers per task (issue 26): a binary model's probability and label as
before, a multiclass model's class and every class's probability, a regression model's value
and its prediction interval; one item per row of a list or a table, a 422 naming the column
of a bad row, the OpenAPI schema of each answer, the predictions log's columns.

The app is the real one (FastAPI's TestClient, the real suite checks and log writer) over a
toy table; the served version is a tiny ONNX model in the task's output shape
(tests/task_models.py), handed to the rollout as a poll would (no registry needed here;
tests/unit/registry/test_serving.py materialises versions from a real one).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from retrain.config import Params, load_params_at
from retrain.registry.versions import ModelVersion
from tests import task_models as tm
from tests.conftest import REPO

KINDS = ("binary", "multiclass", "regression")
HALF_WIDTH = 7.5


def served_model(root: Path, params: Params, kind: str) -> Any:
    """A registered version's files as `load_version` returns them, for the toy model."""
    from retrain.registry.serving import ServedModel
    from retrain.scoring import Interval

    folder = root / "served"
    onnx, pre = tm.write_model(folder, kind)
    version = ModelVersion("toy-model", "v1.0.0", "0" * 40)
    if kind == "regression":
        intervals = folder / "intervals.json"
        intervals.write_text(json.dumps({"level": 0.9, "half_width": HALF_WIDTH, "n_val": 80}))
        return ServedModel(version, onnx, pre, None, intervals, Interval.load(intervals))
    return ServedModel(version, onnx, pre, 0.5 if kind == "binary" else None)


class Served:
    def __init__(self, kind: str, root: Path, client: TestClient, params: Params) -> None:
        self.kind, self.root, self.client, self.params = kind, root, client, params
        self.pre = root / "served" / "preprocessor.json"

    def expected(self, df: pd.DataFrame) -> np.ndarray:
        return tm.expected(self.kind, self.pre, df)


@pytest.fixture(scope="module", params=KINDS)
def served(request, tmp_path_factory) -> Iterator[Served]:
    from retrain.serve.app import create_app
    from retrain.serve.model import ServingState, handle_of

    kind = request.param
    root = tm.checkout(tmp_path_factory.mktemp(kind) / "repo", REPO / "params.yaml", kind)
    params = load_params_at(root)
    app = create_app(root, params, poll=False)
    with TestClient(app) as client:
        # What a poll does when the registry names a version in prod.
        app.state.rollout.state = ServingState(handle_of(served_model(root, params, kind), params))
        yield Served(kind, root, client, params)
    app.state.checker.warm()  # let GE's import in the lifespan's thread finish (test_app.py)


def _json_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in df.to_dict("records")
    ]


def _check_answer(s: Served, answer: dict[str, Any], p: np.ndarray, row_id: str) -> None:
    """One row's answer holds exactly the task's fields, with the model's numbers."""
    assert answer["id"] == row_id
    if s.kind == "binary":
        assert set(answer) - {"id"} >= {"probability", "label"}
        assert answer["probability"] == pytest.approx(p, abs=1e-6)
        assert answer["label"] == int(p >= 0.5)
    elif s.kind == "multiclass":
        assert answer["class"] == tm.CLASSES[int(np.argmax(p))]
        assert list(answer["probabilities"]) == tm.CLASSES  # the pinned order, every class
        got = [answer["probabilities"][c] for c in tm.CLASSES]
        assert got == pytest.approx(p.tolist(), abs=1e-6) and sum(got) == pytest.approx(1)
        assert "probability" not in answer and "label" not in answer
    else:
        assert answer["prediction"] == pytest.approx(p, abs=1e-4)
        interval = answer["interval"]
        assert interval["level"] == 0.9
        assert interval["lower"] == pytest.approx(answer["prediction"] - HALF_WIDTH)
        assert interval["upper"] == pytest.approx(answer["prediction"] + HALF_WIDTH)
        assert "probability" not in answer and "label" not in answer


def test_one_row_gets_the_task_s_answer(served):
    rows = tm.table(3)
    resp = served.client.post("/predict", json=_json_rows(rows)[1])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert resp.headers["X-Model-Version"] == "v1.0.0" and body["model"] == "toy-model@v1.0.0"
    _check_answer(served, body, served.expected(rows)[1], "r1")
    # The threshold is a binary model's: the others' answers do not carry one.
    assert ("threshold" in body) == (served.kind == "binary")
    fields = {
        "binary": [
            "probability",
            "label",
            "id",
            "model_version",
            "model",
            "model_md5",
            "threshold",
        ],
        "multiclass": ["class", "probabilities", "id", "model_version", "model", "model_md5"],
        "regression": ["prediction", "interval", "id", "model_version", "model", "model_md5"],
    }[served.kind]
    assert list(body) == fields


def test_a_list_gets_one_item_per_row_in_order(served):
    rows = tm.table(7, seed=3)
    resp = served.client.post("/predict", json=_json_rows(rows))
    assert resp.status_code == 200, resp.text
    items = resp.json()["predictions"]
    assert len(items) == 7
    expected = served.expected(rows)
    for i, item in enumerate(items):
        _check_answer(served, item, expected[i], f"r{i}")


def test_a_table_gets_the_task_s_columns_as_json_and_parquet(served):
    rows = tm.table(6, seed=4)
    body = rows.to_csv(index=False).encode()
    resp = served.client.post("/predict/batch", content=body, headers={"Content-Type": "text/csv"})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["rows"] == 6 and out["row_id"] == rows.row_id.tolist()
    expected = served.expected(rows)
    if served.kind == "binary":
        assert out["probability"] == pytest.approx(expected.tolist(), abs=1e-6)
    elif served.kind == "multiclass":
        assert out["class"] == [tm.CLASSES[i] for i in expected.argmax(axis=1)]
        assert list(out["probabilities"]) == tm.CLASSES
        for i, c in enumerate(tm.CLASSES):
            assert out["probabilities"][c] == pytest.approx(expected[:, i].tolist(), abs=1e-6)
    else:
        assert out["prediction"] == pytest.approx(expected.tolist(), abs=1e-4)
        lower = np.array(out["interval"]["lower"])
        assert lower == pytest.approx(np.array(out["prediction"]) - HALF_WIDTH)
        assert out["interval"]["level"] == 0.9
    parquet = served.client.post(
        "/predict/batch",
        content=body,
        headers={"Content-Type": "text/csv", "Accept": "application/vnd.apache.parquet"},
    )
    table = pd.read_parquet(io.BytesIO(parquet.content))
    columns = {
        "binary": ["probability", "label"],
        "multiclass": ["predicted_class"] + [f"probability_{c}" for c in tm.CLASSES],
        "regression": ["prediction", "interval_lower", "interval_upper", "interval_level"],
    }[served.kind]
    assert list(table.columns) == ["row_id", *columns, "model_version"]
    assert len(table) == 6


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("colour", "purple", "unseen category"),
        ("x2", 11.0, "out of range"),
        ("x1", "a", "wrong type"),
    ],
)
def test_a_bad_row_is_a_422_naming_its_column(served, column, value, problem):
    rows = _json_rows(tm.table(3))
    rows[2][column] = value
    resp = served.client.post("/predict", json=rows)
    assert resp.status_code == 422, resp.text
    (found,) = resp.json()["detail"]
    assert found["column"] == column and found["problem"] == problem
    assert column in found["message"]


def test_the_openapi_schema_describes_the_task_s_answer(served):
    spec = served.client.get("/openapi.json").json()
    answer = spec["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]
    refs = sorted(r["$ref"].split("/")[-1] for r in answer["schema"]["anyOf"])
    schemas = spec["components"]["schemas"]
    if served.kind == "binary":  # as before the task existed
        assert refs == ["ScoredMany", "ScoredOne"]
        assert {"probability", "label", "threshold"} <= set(schemas["ScoredOne"]["properties"])
    elif served.kind == "multiclass":
        assert refs == ["ScoredClassMany", "ScoredClassOne"]
        one = schemas["ScoredClassOne"]["properties"]
        assert one["class"]["enum"] == tm.CLASSES and "threshold" not in one
        probs = schemas["ClassProbabilities"]
        assert list(probs["properties"]) == tm.CLASSES and probs["required"] == tm.CLASSES
        many = schemas["ScoredClassMany"]["properties"]["predictions"]["items"]
        assert many["$ref"].endswith("/ScoredClass")
    else:
        assert refs == ["ScoredValueMany", "ScoredValueOne"]
        one = schemas["ScoredValueOne"]["properties"]
        assert one["prediction"]["type"] == "number" and "threshold" not in one
        assert one["interval"]["$ref"].endswith("/PredictionInterval")
        assert set(schemas["PredictionInterval"]["required"]) == {"lower", "upper", "level"}
    # The docs page renders it offline: its own assets and the schema written as OpenAPI 3.0.
    page = served.client.get("/docs")
    assert page.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in page.text
    spec30 = served.client.get("/docs/openapi-3.0.json").json()
    assert spec30["openapi"].startswith("3.0") and '{"type": "null"}' not in json.dumps(spec30)


def test_ready_names_what_the_task_serves(served):
    prod = served.client.get("/ready").json()["prod"]
    assert ("threshold" in prod) == (served.kind == "binary")
    if served.kind == "regression":
        assert prod["interval"] == {"level": 0.9, "half_width": HALF_WIDTH, "n_val": 80}
        assert set(prod["md5"]) == {"model.onnx", "preprocessor.json", "intervals.json"}
    if served.kind == "multiclass":
        assert prod["task"] == "multiclass: 4 classes ['F', 'M', 'L', 'VF']"


def test_the_predictions_log_keeps_what_the_monitor_needs(served):
    """The task's outputs beside the inputs: the class probabilities (multiclass), the
    predicted value (regression)."""
    from retrain.serve.log import read_log

    plog = served.client.app.state.log  # type: ignore[attr-defined]
    rows = tm.table(4, seed=9)
    assert served.client.post("/predict", json=_json_rows(rows)).status_code == 200
    plog.close()  # flush what is queued (the lifespan's exit would too)
    plog.start()
    logged = read_log(served.params.paths.predictions_log)
    mine = logged[logged.row_id.isin(rows.row_id) & logged.x1.isin(rows.x1)].tail(4)
    assert len(mine) == 4
    expected = served.expected(rows)
    if served.kind == "binary":
        assert mine.probability.to_numpy() == pytest.approx(expected, abs=1e-6)
        assert mine.label.tolist() == (expected >= 0.5).astype(int).tolist()
    elif served.kind == "multiclass":
        assert mine.predicted_class.tolist() == [tm.CLASSES[i] for i in expected.argmax(1)]
        for i, c in enumerate(tm.CLASSES):
            assert mine[f"probability_{c}"].to_numpy() == pytest.approx(expected[:, i], abs=1e-6)
    else:
        assert mine.prediction.to_numpy() == pytest.approx(expected, abs=1e-4)
        assert "probability" not in mine.columns


@pytest.mark.browser
def test_the_docs_page_draws_the_task_s_answer_offline(served):
    """Swagger UI in headless Chromium with the network refused draws the multiclass answer's
    models (its class enum and per-class properties are the most a page must draw; the
    regression answer's schema is checked as OpenAPI 3.0 above, Telco's binary page by
    tests/integration/test_serve.py): one Chromium run, seconds."""
    import os
    import re
    import socket
    import threading
    import time

    import uvicorn

    from retrain.orchestration import browser
    from retrain.serve.app import create_app

    if served.kind != "multiclass":
        pytest.skip("one page is enough: the multiclass one (see the docstring)")
    if browser.chromium() is None:
        message = "no chromium on PATH: apt-get install -y chromium (.ci/run does)"
        if os.environ.get("RETRAIN_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(served.root, served.params, poll=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.1)
        dom = browser.dump_dom(f"http://127.0.0.1:{port}/docs")
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        app.state.checker.warm()
    dom = re.sub(r"<script\b.*?</script>", "", dom, flags=re.S | re.I)  # what was drawn
    assert "Unable to render" not in dom and "ToyRow" in dom
    for model in ("ScoredClassOne", "ScoredClassMany", "ClassProbabilities"):
        assert model in dom, dom[-3000:]


def test_a_model_of_other_classes_is_refused_at_load(tmp_path):
    """A 4-class model where params.yaml pins 3 classes: refused when loaded (the poll keeps
    the version serving and /ready shows this), never answered with the wrong names."""
    import yaml

    from retrain.scoring import ModelMismatch
    from retrain.serve.model import handle_of

    root = tm.checkout(tmp_path / "repo", REPO / "params.yaml", "multiclass")
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["dataset"]["classes"] = ["F", "M", "L"]
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    params = load_params_at(root)
    with pytest.raises(ModelMismatch) as err:
        handle_of(served_model(root, params, "multiclass"), params)
    assert str(err.value) == (
        "toy-model@v1.0.0: model.onnx outputs 4 value(s) per row ('probabilities'); a "
        "multiclass: 3 classes ['F', 'M', 'L'] task needs 3"
    )
    binary = load_params_at(tm.checkout(tmp_path / "b", REPO / "params.yaml", "binary"))
    with pytest.raises(ModelMismatch, match="outputs 4 value"):
        handle_of(served_model(root, binary, "multiclass"), binary)
