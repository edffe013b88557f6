"""Per-run report folders: a later run never overwrites an earlier one, the newest N are kept,
and the stack's reports server serves them over loopback HTTP (a real server)."""

from __future__ import annotations

import os
import time
import urllib.request

import pytest

from retrain.orchestration import reports, stack
from tests.conftest import params_in


@pytest.fixture
def params(tmp_path, default_params_raw):
    raw = {**default_params_raw, "ui": {"keep_runs": 2}}
    return params_in(tmp_path, raw)


def _page(tmp_path, text: str):
    folder = tmp_path / "workspace_plots"
    folder.mkdir(exist_ok=True)
    (folder / "index.html").write_text(text)
    return folder


def test_each_run_has_its_own_folder_served_over_http(tmp_path, params, monkeypatch):
    runs = ["retrain-manual-1", "retrain-drift-2", "retrain-manual-3"]
    for i, run in enumerate(runs):
        # The workspace folder is overwritten by each run; the published copies are not.
        reports.publish(params, run, {"plots": _page(tmp_path, f"<p>plots of {run}</p>")})
        os.utime(reports.run_folder(params, run), (1000 + i, 1000 + i))
    root = params.paths.run_reports
    assert sorted(p.name for p in root.iterdir()) == runs[1:]  # the newest 2 kept

    port = stack.free_port()
    server = stack.start_reports_server(root, port, tmp_path / "reports.log")
    try:
        monkeypatch.setenv(reports.ENV_URL, f"http://127.0.0.1:{port}")
        for run in runs[1:]:
            url = reports.url_for(params, root / run / "plots" / "index.html")
            assert url == f"http://127.0.0.1:{port}/{run}/plots/index.html"
            with urllib.request.urlopen(url, timeout=10) as resp:
                assert resp.status == 200
                assert resp.read().decode() == f"<p>plots of {run}</p>"
    finally:
        stack._stop_group(server.pid, grace=5)
    time.sleep(0.2)
    assert not stack._alive(server.pid)


def test_without_a_stack_links_are_files(tmp_path, params, monkeypatch):
    monkeypatch.delenv(reports.ENV_URL, raising=False)
    copies = reports.publish(params, "predict-x", {"plots": _page(tmp_path, "x")})
    assert reports.url_for(params, copies["plots"]).startswith("file://")
