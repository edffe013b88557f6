"""A broken params.yaml is one line from every command, never a traceback (ConfigError is a
RetrainError)."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from retrain.cli import app
from retrain.config import ConfigError
from retrain.errors import RetrainError


def test_config_error_is_a_retrain_error():
    assert issubclass(ConfigError, RetrainError) and issubclass(ConfigError, ValueError)


@pytest.mark.parametrize("command", ["rollback", "results", "ingest", "runs"])
def test_a_typo_in_params_is_one_line(tmp_path, default_params_raw, command):
    raw = dict(default_params_raw, tune={**default_params_raw["tune"], "n_trail": 3})
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = CliRunner().invoke(app, [command, "--params", str(params)])
    assert out.exit_code == 1, out.output
    assert out.exception is None or isinstance(out.exception, SystemExit)
    assert out.output.splitlines() == [f"error: {params}: tune.n_trail: unknown key"]


def test_results_without_metrics_is_one_line(tmp_path, default_params_raw, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(default_params_raw, sort_keys=False))
    out = CliRunner().invoke(app, ["results"])
    assert out.exit_code == 1
    assert out.output.splitlines() == [
        "error: metrics/evaluate.json: no metrics yet; run `dvc repro` first"
    ]
