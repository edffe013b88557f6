"""A DVC remote on S3-compatible storage (moto's server on 127.0.0.1, no AWS): push a recorded
retrain from one clone, replay it from the bucket in a fresh clone, and score with the model
read through `dvc.api` by a clone that never pulled."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import urllib.request
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from tests.conftest import RAW, copy_repo, pipeline_env, record_workspace_as_prod
from tests.servers import moto_s3, moto_server_bin

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.extended,
    pytest.mark.skipif(
        moto_server_bin() is None,
        reason="moto_server not found: python3 -m venv /tmp/moto-venv && "
        "/tmp/moto-venv/bin/pip install 'moto[server]' (or set MOTO_SERVER)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("dvc_s3") is None,
        reason="dvc-s3 missing: pip install 'retrain[s3]'",
    ),
]


def dvc(repo, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=repo,
        env=pipeline_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def git(repo, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def bucket_keys(endpoint: str, bucket: str) -> list[str]:
    with urllib.request.urlopen(f"{endpoint}/{bucket}?list-type=2&max-keys=1000") as resp:
        root = ET.fromstring(resp.read())
    return [el.text or "" for el in root.iter() if el.tag.endswith("Key")]


def test_push_replay_and_predict_through_an_s3_remote(tmp_path, trained_repo, monkeypatch):
    from retrain.config import load_params_at
    from retrain.registry import reproduce, serving
    from retrain.registry.versions import ModelVersion
    from retrain.scoring import score_frame

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }.items():
        monkeypatch.setenv(key, value)
    origin = copy_repo(trained_repo, tmp_path / "origin")
    with moto_s3(tmp_path) as endpoint:
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/retrain", method="PUT"))
        dvc(origin, "remote", "add", "-d", "s3", "s3://retrain/store")
        dvc(origin, "remote", "modify", "s3", "endpointurl", endpoint)
        git(origin, "add", ".dvc/config")
        git(origin, "commit", "-qm", "DVC remote on S3")
        rec = record_workspace_as_prod(origin)
        assert rec["tuning"] == {"mode": "sequential"}  # the record says how the study ran
        dvc(origin, "push")
        assert any(k.startswith("store/files/md5/") for k in bucket_keys(endpoint, "retrain"))

        # Pull and rebuild in a fresh clone, from the bucket alone.
        params = load_params_at(origin)
        replay = reproduce.replay(origin, params, rec["run_id"])
        assert replay.identical, reproduce.report(replay)

        # A clone that never pulled scores with the model read through dvc.api.
        reader = tmp_path / "reader"
        git(tmp_path, "clone", "-q", str(origin), str(reader))
        assert not (reader / ".dvc" / "cache").exists()
        cloned = load_params_at(reader)
        head = git(reader, "rev-parse", "HEAD").strip()
        version = ModelVersion(rec["model"]["name"], rec["model"]["version"], head)
        served = serving.load_version(reader, cloned, version)
        rows = pd.read_csv(RAW).head(50)
        remote = score_frame(rows, cloned, served)
        local = score_frame(rows, params)
    assert remote["probability"].tolist() == local["probability"].tolist()
    assert served.onnx.is_file() and not (reader / ".dvc" / "cache").exists()
