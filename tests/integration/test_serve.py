"""`retrain serve` against a real registry: endpoints, bad input, rollout, the log, the monitor.

One module-scoped checkout (the session's trained repo, recorded as prod v1.0.0) serves the
read-only tests through FastAPI's TestClient; tests that move the registry copy it first.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from retrain.config import Params, load_params_at
from tests.conftest import copy_repo, pipeline_env, record_workspace_as_prod

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "churn-model"


def params_of(repo: Path, **serve: Any) -> Params:
    params = load_params_at(repo)
    if serve:
        params = params.model_copy(update={"serve": params.serve.model_copy(update=serve)})
    return params


def app_for(repo: Path, **kwargs: Any):
    from retrain.serve.app import create_app

    serve = kwargs.pop("serve", {})
    return create_app(repo, params_of(repo, **serve), **kwargs)


def raw_rows(repo: Path, n: int, start: int = 0) -> pd.DataFrame:
    table = pd.read_csv(repo / "data" / "raw" / "telco_churn.csv")
    return table.iloc[start : start + n].drop(columns=["churn"]).reset_index(drop=True)


def as_json(df: pd.DataFrame) -> list[dict[str, Any]]:
    rows = df.to_dict("records")
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in rows
    ]


def new_version(repo: Path, shift: float) -> str:
    """A second model: the workspace ONNX's output bias moved by `shift`, pinned in dvc.lock
    (`dvc commit`) and recorded as a retrain would, which registers and promotes it."""
    import onnx
    from onnx import numpy_helper

    path = repo / "models" / "model" / "model.onnx"
    model = onnx.load(path)
    # The output layer's bias: the last initializer with one value per ensemble member (or one).
    bias = next(
        i
        for i in reversed(model.graph.initializer)
        if i.name.endswith("output.bias") or list(i.dims) == [1]
    )
    moved = numpy_helper.to_array(bias) + np.float32(shift)
    bias.CopyFrom(numpy_helper.from_array(moved.astype(np.float32), bias.name))
    onnx.save(model, path)
    subprocess.run(
        [sys.executable, "-m", "dvc", "commit", "-f", "-q", "train"],
        cwd=repo,
        env=pipeline_env(),
        check=True,
        capture_output=True,
    )
    return str(record_workspace_as_prod(repo)["model"]["prod"])


def rollback(repo: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "retrain.cli", "rollback"],
        cwd=repo,
        env=pipeline_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def served(trained_repo, tmp_path_factory) -> Path:
    repo = copy_repo(trained_repo, tmp_path_factory.mktemp("served") / "repo")
    assert record_workspace_as_prod(repo)["model"]["prod"] == "v1.0.0"
    return repo


@pytest.fixture(scope="module")
def client(served):
    with TestClient(app_for(served, poll=False)) as c:
        yield c


def test_health_and_ready_name_the_registry_version_and_md5(client, served):
    from retrain.infra.dvc import lock_outputs

    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True and body["prod"]["version"] == "v1.0.0"
    assert body["prod"]["model"] == f"{MODEL}@v1.0.0"
    pinned = lock_outputs((served / "dvc.lock").read_text())
    assert body["prod"]["md5"]["model.onnx"] == pinned["models/model/model.onnx"]
    assert body["prod"]["md5"]["preprocessor.json"] == pinned["data/prepared/preprocessor.json"]


def test_predict_scores_as_the_predict_flow_does(client, served):
    from retrain.registry.serving import prod_model
    from retrain.scoring import score_frame

    params = load_params_at(served)
    rows = raw_rows(served, 20)
    expected = score_frame(rows, params, prod_model(served, params))
    one = client.post("/predict", json=as_json(rows.head(1))[0])
    assert one.status_code == 200
    assert one.headers["X-Model-Version"] == "v1.0.0"
    body = one.json()
    assert body["model_version"] == "v1.0.0" and body["id"] == str(rows.customer_id[0])
    assert body["probability"] == pytest.approx(expected.probability[0], abs=1e-6)
    assert body["label"] == expected.label[0]
    assert body["threshold"] == pytest.approx(prod_model(served, params).threshold)
    many = client.post("/predict", json=as_json(rows))
    assert many.status_code == 200 and many.headers["X-Model-Version"] == "v1.0.0"
    got = many.json()["predictions"]
    assert [p["id"] for p in got] == [str(i) for i in rows.customer_id]
    assert np.allclose([p["probability"] for p in got], expected.probability, atol=1e-6)
    assert [p["label"] for p in got] == expected.label.tolist()


def _columns(df: pd.DataFrame, params: Params) -> dict[str, np.ndarray]:
    """Rows as the JSON endpoint turns them into columns (floats with NaN, objects)."""
    cols = {c: df[c].to_numpy(dtype="float64") for c in params.dataset.numeric}
    for c in params.dataset.categorical:
        cols[c] = np.array([None if pd.isna(v) else v for v in df[c]], dtype=object)
    return cols


def _covering(table: pd.DataFrame, params: Params) -> pd.DataFrame:
    """Rows with a blank, then for every categorical column the first row of each level."""
    picked = set(table.index[table[params.dataset.numeric].isna().any(axis=1)])
    for c in params.dataset.categorical:
        picked |= set(table.groupby(c, dropna=False).head(1).index)
    return table.loc[sorted(picked)].reset_index(drop=True)


def test_json_fast_path_is_bit_equal_to_the_predict_flow(client, served):
    """The JSON endpoint scores with `RowEncoder` (numpy) instead of the predict flow's pandas
    preprocessing: every row of the real table, blanks and every training level among them,
    gets the very same float, in process and over HTTP one row at a time."""
    from retrain.registry.serving import prod_model
    from retrain.scoring import decide, model_input, score_frame
    from retrain.serve.encode import RowEncoder
    from retrain.serve.model import load_handle

    params = load_params_at(served)
    model = prod_model(served, params)
    handle = load_handle(served, params, model.version)
    pre = handle.predictor.preprocessor
    table = pd.read_csv(served / "data" / "raw" / "telco_churn.csv").drop(columns=["churn"])
    assert table[params.dataset.numeric].isna().any(axis=None)  # the blanks are in there
    expected = score_frame(table, params, model).probability.to_numpy()
    scored = handle.score_columns(_columns(table, params)).columns()
    assert np.array_equal(scored["probability"], expected)
    assert np.array_equal(scored["label"], decide(expected, model.threshold))

    # Gaps no valid request has (a null or unseen level, a numeric blank without a
    # fill value): the matrix is still transform's, bit for bit.
    odd = table.sample(300, random_state=1).reset_index(drop=True).astype(object)
    for i, c in enumerate(params.dataset.categorical):
        odd.loc[i % len(odd), c] = None
        odd.loc[(i + 100) % len(odd), c] = "never seen"
    for i, c in enumerate(params.dataset.numeric):
        odd.loc[200 + i, c] = np.nan
    odd[params.dataset.numeric] = odd[params.dataset.numeric].astype("float64")
    for fills in (params.prepare.fill_values, {}):
        bare = params.model_copy(
            update={"prepare": params.prepare.model_copy(update={"fill_values": fills})}
        )
        want = pre.transform(model_input(odd, bare))
        got = RowEncoder(pre, fills).encode(_columns(odd, params))
        assert got.dtype == want.dtype and np.array_equal(got, want)

    # Over HTTP, one row per request: the blank rows and one row of every level. Bit-equal
    # to the predict flow's code on the same one row. onnxruntime itself rounds a one-row
    # batch and a many-row batch differently (other kernels), by at most one float32 step
    # at the scale of a probability (2**-23, measured on the whole table: 1.19e-7).
    rows = _covering(table, params)
    covered = {(c, v) for c in params.dataset.categorical for v in rows[c].astype(str)}
    assert covered >= {(c, v) for c, levels in pre.categories.items() for v in levels}
    batch = score_frame(rows, params, model).probability.to_numpy()
    for i, row in enumerate(as_json(rows)):
        resp = client.post("/predict", json=row)
        assert resp.status_code == 200, resp.text
        got = resp.json()["probability"]  # the same float64, through JSON
        assert got == float(
            handle.score(rows.iloc[[i]].reset_index(drop=True), params).prediction[0]
        )
        assert abs(got - batch[i]) <= 2**-23, (i, got, batch[i])


def test_batch_endpoint_takes_csv_and_parquet(client, served):
    rows = raw_rows(served, 300)
    reference = client.post("/predict", json=as_json(rows)).json()["predictions"]
    csv = client.post(
        "/predict/batch", content=rows.to_csv(index=False), headers={"Content-Type": "text/csv"}
    )
    assert csv.status_code == 200 and csv.json()["rows"] == 300
    assert np.allclose(csv.json()["probability"], [p["probability"] for p in reference])
    buf = io.BytesIO()
    rows.to_parquet(buf)
    parquet = client.post(
        "/predict/batch",
        content=buf.getvalue(),
        headers={
            "Content-Type": "application/vnd.apache.parquet",
            "Accept": "application/vnd.apache.parquet",
        },
    )
    assert parquet.status_code == 200 and parquet.headers["X-Model-Version"] == "v1.0.0"
    table = pd.read_parquet(io.BytesIO(parquet.content))
    assert np.allclose(table["probability"], csv.json()["probability"])
    assert (table["model_version"] == "v1.0.0").all()
    other = client.post("/predict/batch", content=b"{}", headers={"Content-Type": "text/plain"})
    assert other.status_code == 415


def _json_bad(row: dict[str, Any], kind: str) -> tuple[Any, str, str]:
    if kind == "missing column":
        return {k: v for k, v in row.items() if k != "tenure"}, "tenure", "missing column"
    if kind == "unseen category":
        return {**row, "payment_method": "Bitcoin"}, "payment_method", "unseen category"
    if kind == "wrong type":
        return {**row, "tenure": "twelve"}, "tenure", "wrong type"
    if kind == "NaN":
        return {**row, "monthly_charges": float("nan")}, "monthly_charges", "missing value"
    if kind == "null":
        return {**row, "contract": None}, "contract", "missing value"
    if kind == "unexpected column":
        return {**row, "favourite_colour": "red"}, "favourite_colour", "unexpected column"
    if kind == "out of range":
        return {**row, "tenure": 500}, "tenure", "out of range"
    raise AssertionError(kind)


BAD = [
    "missing column",
    "unseen category",
    "wrong type",
    "NaN",
    "null",
    "unexpected column",
    "out of range",
]


@pytest.mark.parametrize("kind", BAD)
def test_bad_json_row_gets_422_naming_column_and_problem(client, served, kind):
    good = as_json(raw_rows(served, 2))
    bad, column, problem = _json_bad(good[1], kind)
    for body, row in ((bad, None), ([good[0], bad], 1)):
        # json.dumps writes NaN as the bare token NaN, as a careless client would
        resp = client.post(
            "/predict", content=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        assert resp.status_code == 422, resp.text
        found = [p for p in resp.json()["detail"] if p["column"] == column]
        assert found and found[0]["problem"].startswith(problem), resp.json()
        assert column in found[0]["message"]
        if row is not None and found[0]["rows"]:
            assert found[0]["rows"] == [row]
    assert client.post("/predict", json=good[0]).status_code == 200  # still serving


@pytest.mark.parametrize("kind", ["missing column", "unseen category", "wrong type", "NaN"])
def test_bad_csv_table_gets_422_naming_column_and_problem(client, served, kind):
    rows = raw_rows(served, 30).astype(object)
    column, problem = {
        "missing column": ("tenure", "missing column"),
        "unseen category": ("contract", "unseen category"),
        "wrong type": ("monthly_charges", "wrong type"),
        "NaN": ("monthly_charges", "missing value"),
    }[kind]
    if kind == "missing column":
        rows = rows.drop(columns=[column])
    else:
        rows.loc[7, column] = {"unseen category": "Ten year", "wrong type": "lots"}.get(
            kind, float("nan")
        )
    resp = client.post(
        "/predict/batch", content=rows.to_csv(index=False), headers={"Content-Type": "text/csv"}
    )
    assert resp.status_code == 422, resp.text
    first = resp.json()["detail"][0]
    assert first["column"] == column and first["problem"].startswith(problem), first
    if kind != "missing column":
        assert first["rows"] == [7]


def test_openapi_is_built_from_the_dataset_schema(client, served):
    params = load_params_at(served)
    spec = client.get("/openapi.json").json()
    row = spec["components"]["schemas"]["TelcoChurnRow"]
    assert set(row["required"]) == set(params.dataset.features)
    assert row["additionalProperties"] is False
    types = {c: json.dumps(row["properties"][c]) for c in params.dataset.features}
    # 0/1 flags are integers (tests/unit/serve/test_app.py checks each column's schema)
    assert all('"number"' in types[c] or '"integer"' in types[c] for c in params.dataset.numeric)
    assert all('"string"' in types[c] for c in params.dataset.categorical)
    assert "/predict/batch" in spec["paths"]


def test_bearer_token_guards_everything_but_health(served):
    row = as_json(raw_rows(served, 1))[0]
    with TestClient(app_for(served, poll=False, token="s3cret")) as c:
        assert c.get("/health").status_code == 200
        assert c.post("/predict", json=row).status_code == 401
        assert c.get("/ready").status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert c.post("/predict", json=row, headers=wrong).status_code == 401
        ok = {"Authorization": "Bearer s3cret"}
        assert c.post("/predict", json=row, headers=ok).status_code == 200


def test_reload_on_promotion_and_on_rollback(served, tmp_path):
    repo = copy_repo(served, tmp_path / "repo")
    rows = as_json(raw_rows(repo, 40))
    app = app_for(repo, poll=False)
    with TestClient(app) as c:
        before = c.post("/predict", json=rows).json()
        md5_before = c.get("/ready").json()["prod"]["md5"]["model.onnx"]
        assert before["model_version"] == "v1.0.0"
        assert new_version(repo, shift=2.0) == "v2.0.0"
        assert c.post("/predict", json=rows).json()["model_version"] == "v1.0.0"  # not yet
        assert app.state.rollout.poll() is True
        after = c.post("/predict", json=rows)
        assert after.headers["X-Model-Version"] == "v2.0.0"
        ready = c.get("/ready").json()
        assert ready["prod"]["version"] == "v2.0.0" and ready["swaps"] == 2
        assert ready["prod"]["md5"]["model.onnx"] != md5_before
        p1 = [p["probability"] for p in before["predictions"]]
        p2 = [p["probability"] for p in after.json()["predictions"]]
        assert all(b > a for a, b in zip(p1, p2, strict=True))  # the moved bias shows
        assert app.state.rollout.poll() is False  # nothing moved since
        assert "v2.0.0 -> v1.0.0" in rollback(repo)
        assert app.state.rollout.poll() is True
        again = c.post("/predict", json=rows).json()
        assert again["model_version"] == "v1.0.0"
        assert [p["probability"] for p in again["predictions"]] == p1


def canary(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "retrain.cli", "canary", *args],
        cwd=repo,
        env=pipeline_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_canary_start_share_abort_and_promote(served, tmp_path):
    repo = copy_repo(served, tmp_path / "repo")
    new_version(repo, shift=2.0)
    rollback(repo)  # prod back to v1; v2 is registered, in no stage
    said = canary(repo, "start", "v2.0.0", "--share", "0.3")
    assert "v2.0.0: canary at 30% of request keys (prod v1.0.0)" in said
    row = as_json(raw_rows(repo, 1))[0]
    with TestClient(app_for(repo, poll=False)) as c:  # the share comes from the command
        rollout = c.app.state.rollout  # type: ignore[attr-defined]
        ready = c.get("/ready").json()
        assert ready["prod"]["version"] == "v1.0.0"
        assert ready["canary"]["version"] == "v2.0.0" and ready["canary"]["share"] == 0.3
        seen = {}
        for i in range(100):
            key = f"user-{i}"
            first = c.post("/predict", json=row, headers={"X-Request-Key": key})
            second = c.post("/predict", json=row, headers={"X-Request-Key": key})
            assert first.headers["X-Model-Version"] == second.headers["X-Model-Version"]
            seen[key] = first.headers["X-Model-Version"]
        share = sum(v == "v2.0.0" for v in seen.values()) / len(seen)
        assert 0.15 < share < 0.45, share  # 100 keys at 0.3: sd 0.046
        assert c.post("/predict", json=row).headers["X-Model-Version"] == "v1.0.0"  # no key
        # Abort: the running service drops the canary at its next poll; prod is unchanged.
        said = canary(repo, "abort")
        assert "canary v2.0.0 aborted: prod v1.0.0 -> v1.0.0" in said
        assert "no notification: no Prefect server configured" in said
        assert rollout.poll() is True and c.get("/ready").json()["canary"] is None
        # Promote: prod moves to the candidate and the canary ends.
        canary(repo, "start", "v2.0.0", "--share", "0.5")
        assert rollout.poll() is True and c.get("/ready").json()["canary"]["share"] == 0.5
        assert "canary v2.0.0 promoted: prod v1.0.0 -> v2.0.0" in canary(repo, "promote")
        assert rollout.poll() is True
        ready = c.get("/ready").json()
        assert ready["prod"]["version"] == "v2.0.0" and ready["canary"] is None
        key = next(k for k, v in seen.items() if v == "v1.0.0")
        assert (
            c.post("/predict", json=row, headers={"X-Request-Key": key}).headers["X-Model-Version"]
            == "v2.0.0"
        )
    # Each step is a line of the canary log; nothing to end now, and prod cannot be a canary.
    log = load_params_at(repo).paths.monitor_dir / "canary.jsonl"
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(x["action"], x["version"]) for x in lines] == [
        ("started", "v2.0.0"),
        ("aborted", "v2.0.0"),
        ("started", "v2.0.0"),
        ("promoted", "v2.0.0"),
    ]
    ended = subprocess.run(
        [sys.executable, "-m", "retrain.cli", "canary", "abort"],
        cwd=repo,
        env=pipeline_env(),
        capture_output=True,
        text=True,
    )
    assert ended.returncode == 1 and "no version of churn-model is in candidate" in ended.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_promotion_under_load_fails_no_request_and_switches_once(served, tmp_path):
    import uvicorn

    repo = copy_repo(served, tmp_path / "repo")
    port = _free_port()
    app = app_for(repo, serve={"poll_s": 0.2})
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    rows = as_json(raw_rows(repo, 5))
    seen: list[tuple[int, str]] = []
    failures: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            while not stop.is_set():
                try:
                    resp = http.post("/predict", json=rows)
                    seen.append((resp.status_code, resp.headers.get("X-Model-Version", "")))
                except httpx.HTTPError as err:
                    failures.append(repr(err))

    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        client = threading.Thread(target=hammer)
        client.start()
        time.sleep(0.5)
        assert new_version(repo, shift=2.0) == "v2.0.0"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not seen or seen[-1][1] != "v2.0.0"):
            time.sleep(0.1)
        time.sleep(0.5)  # and some more requests on the new version
        stop.set()
        client.join(timeout=30)
    finally:
        stop.set()
        server.should_exit = True
        thread.join(timeout=30)
    assert not failures
    assert seen and all(code == 200 for code, _ in seen), {c for c, _ in seen}
    versions = [v for _, v in seen]
    assert set(versions) == {"v1.0.0", "v2.0.0"}
    switch = versions.index("v2.0.0")
    assert all(v == "v1.0.0" for v in versions[:switch])
    assert all(v == "v2.0.0" for v in versions[switch:])  # switched once, never back
    assert versions.count("v1.0.0") >= 3 and versions.count("v2.0.0") >= 3


@pytest.mark.browser
def test_docs_render_offline_in_chromium(served):
    """/docs in headless Chromium with the network refused: Swagger UI's assets come from
    the service itself, so the page draws every operation and the row model (it was a blank
    page offline while its script came from a CDN)."""
    import os
    import re

    import uvicorn

    from retrain.orchestration import browser

    if browser.chromium() is None:
        message = "no chromium on PATH: apt-get install -y chromium (.ci/run does)"
        if os.environ.get("RETRAIN_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app_for(served, poll=False), host="127.0.0.1", port=port, log_level="warning"
        )
    )
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
    dom = re.sub(r"<script\b.*?</script>", "", dom, flags=re.S | re.I)  # what was drawn
    paths = re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom)
    assert {"/health", "/ready", "/predict", "/predict/batch"} <= set(paths), dom[-3000:]
    assert "TelcoChurnRow" in dom and "Unable to render" not in dom
    assert "cdn." not in dom and "https://" not in re.sub(r'xmlns[^ ]+"', "", dom)


def test_monitor_checks_prediction_drift_on_logged_traffic(served, tmp_path):
    from retrain.registry.serving import prod_model
    from retrain.serve.log import read_log

    monitor = _monitor_module()
    repo = copy_repo(served, tmp_path / "repo")
    params = load_params_at(repo)
    shutil.rmtree(params.paths.predictions_log, ignore_errors=True)  # the other tests' traffic
    table = raw_rows(repo, 2000)
    # Traffic of only the customers the model finds riskiest: the scores have drifted.
    risky = table[(table.contract == "Month-to-month") & (table.tenure < 12)].head(400)
    assert len(risky) >= params.serve.monitor_min_rows
    app = app_for(repo, poll=False)
    with TestClient(app) as c:
        for start in range(0, len(risky), 50):
            part = risky.iloc[start : start + 50]
            assert c.post("/predict", json=as_json(part)).status_code == 200
    logged = read_log(params.paths.predictions_log)  # closing the app flushed the log
    assert len(logged) == len(risky)
    assert set(logged["model_version"]) == {"v1.0.0"}
    assert logged["customer_id"].tolist() == [str(i) for i in risky.customer_id]
    assert {"probability", "label", "scored_at", "tenure", "contract"} <= set(logged.columns)

    summary = monitor.check_traffic.fn(params, prod_model(repo, params))
    assert summary is not None and summary["rows"] == len(risky)
    assert summary["model"] == "v1.0.0"
    assert summary["prediction"]["drifted"] is True and summary["gate"]["tripped"] is True
    assert any("prediction drift" in r for r in summary["gate"]["reasons"])
    written = list((params.paths.monitor_dir / "traffic").glob("*/drift.json"))
    assert len(written) == 1
    assert monitor.check_traffic.fn(params, prod_model(repo, params)) is None  # judged once


def _monitor_module():
    import importlib.util

    from tests.conftest import REPO

    spec = importlib.util.spec_from_file_location("monitor_flow", REPO / "flows" / "monitor.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_serves_on_loopback_and_flushes_the_log_on_sigterm(served, tmp_path):
    import os
    import signal

    repo = copy_repo(served, tmp_path / "repo")
    log = load_params_at(repo).paths.predictions_log
    shutil.rmtree(log, ignore_errors=True)
    proc = subprocess.Popen(  # port 0: the system picks one, the serving line names it
        [sys.executable, "-m", "retrain.cli", "serve", "--port", "0"],
        cwd=repo,
        env=pipeline_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    said = []
    try:
        assert proc.stdout is not None
        while not said or "serving" not in said[-1]:  # click flushes each line it echoes
            said.append(proc.stdout.readline())
            assert said[-1], "".join(said)  # EOF: the process ended before serving
        port = int(said[-1].rsplit(":", 1)[1])
        assert port > 0 and said[-1].strip().endswith(f"on http://127.0.0.1:{port}")
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        ready = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = httpx.get(f"{url}/ready", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert ready is not None and ready.json()["prod"]["version"] == "v1.0.0"
        rows = as_json(raw_rows(repo, 7))
        assert httpx.post(f"{url}/predict", json=rows, timeout=10).status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        out = "".join(said) + out
    # uvicorn shuts down gracefully, then re-raises SIGTERM (exit 0 in older versions)
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert "Application shutdown complete" in out
    assert f"on http://127.0.0.1:{port}" in out and "warning" not in out.lower()
    from retrain.serve.log import read_log

    assert len(read_log(log)) == 7  # queued rows were written before the process exited


FIRST_REQUEST_WHILE_WARMING = """
import sys, threading
import pandas as pd
from retrain.config import load_params_at
from retrain.serve.checks import RequestChecker

repo = sys.argv[1]
params = load_params_at(repo)
checker = RequestChecker(params.dataset.suite, params.dataset)
row = pd.read_csv(f"{repo}/data/raw/telco_churn.csv").head(1).drop(columns=["churn"])
row.loc[row.index[0], "contract"] = "Weekly"
# As `retrain serve` starts: GE imported off the request path while the first bad row arrives.
threading.Thread(target=checker.warm, daemon=True).start()
print([p.problem for p in checker.check(row)])
"""


def test_a_bad_row_during_the_warm_up_gets_its_real_problem(trained_repo):
    # A fresh interpreter (GE not imported yet), as a new `retrain serve` process: a request
    # checked while the warm-up thread imports GE used to import it alongside and find its
    # registry half filled (an ImportError, or "unknown expectation type" for a core one).
    out = subprocess.run(
        [sys.executable, "-c", FIRST_REQUEST_WHILE_WARMING, str(trained_repo)],
        env=pipeline_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "['unseen category']", out.stdout
