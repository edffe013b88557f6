"""prefect.yaml is wired to real code: a stale entrypoint or a missing schedule fails here."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import REPO

DEPLOYMENTS = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_every_entrypoint_imports_a_flow(deployment, monkeypatch):
    from prefect.flows import Flow, load_flow_from_entrypoint

    monkeypatch.chdir(REPO)  # entrypoints are relative to the project root
    flow = load_flow_from_entrypoint(deployment["entrypoint"])
    assert isinstance(flow, Flow)
    assert flow.name == deployment["name"]


def test_schedules():
    crons = {d["name"]: [s["cron"] for s in d.get("schedules", [])] for d in DEPLOYMENTS}
    assert crons == {"retrain": ["0 3 * * 1"], "monitor": ["0 6 * * *"], "predict": []}


def test_no_flow_file_shadows_the_package():
    assert not (REPO / "flows" / "retrain.py").exists()


README = (REPO / "README.md").read_text()
FILE_SUFFIXES = {"json", "onnx", "ckpt", "csv", "parquet", "html", "md", "yaml", "py", "lock"}
FILE_SUFFIXES |= {"dvc", "txt", "toml", "npy"}
# Dotted names the README cites that are APIs or fields of other files, not params keys.
NOT_PARAMS = {"dvc", "torch", "study", "meta", "environment", "retrain"}  # retrain.*: modules


def _readme_row(deployment: str) -> str:
    rows = [line for line in README.splitlines() if line.startswith(f"| `{deployment}/")]
    assert len(rows) == 1, f"README's deployments table has no single row for {deployment}"
    return rows[0]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_descriptions_and_readme_name_exactly_the_flow_parameters(deployment, monkeypatch):
    import re

    from prefect.flows import load_flow_from_entrypoint

    monkeypatch.chdir(REPO)
    flow = load_flow_from_entrypoint(deployment["entrypoint"])
    names = set(flow.parameters.properties)
    description = " ".join(deployment["description"].split())
    assert "Parameters:" in description, deployment["name"]
    tail = re.sub(r"\([^)]*\)", "", description.split("Parameters:")[1])  # drop the notes
    listed = set(re.findall(r"\w+", tail))
    assert listed == names, (deployment["name"], listed ^ names)
    row = _readme_row(deployment["name"])
    tail = re.sub(r"\([^)]*\)", "", row.split("Parameters:")[1])
    in_readme = set(re.findall(r"`(\w+)`", tail))
    assert in_readme == names, (deployment["name"], in_readme ^ names)


def test_the_retrain_description_names_every_stage():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    (retrain,) = (d for d in DEPLOYMENTS if d["name"] == "retrain")
    missing = [s for s in stages if s not in retrain["description"]]
    assert not missing, f"prefect.yaml's retrain description omits stages {missing}"


def test_only_the_schedule_says_schedule():
    # A run started by hand takes the flow's default reason (manual), never the schedule's.
    from retrain.config import Params  # noqa: F401  (the flow's signature is the contract)

    for d in DEPLOYMENTS:
        assert "reason" not in (d.get("parameters") or {}), d["name"]
    (retrain,) = (d for d in DEPLOYMENTS if d["name"] == "retrain")
    assert [s.get("parameters") for s in retrain["schedules"]] == [{"reason": "schedule"}]


def test_readme_names_only_params_keys_that_exist():
    """Every dotted `section.key` in the README is a key of params.yaml (or one the config
    fills with a default), unless it is a file name or one of the few other things cited."""
    import re

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    stale = []
    for dotted in set(re.findall(r"`([a-z_]+(?:\.[a-z_0-9]+)+)`", README)):
        section, *keys = dotted.split(".")
        if keys[-1] in FILE_SUFFIXES or section in NOT_PARAMS:
            continue
        node = params.get(section)
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if node is None and not _optional_key(section, keys):
            stale.append(dotted)
    assert not stale, f"README cites params keys that params.yaml lacks: {sorted(stale)}"


def _optional_key(section: str, keys: list[str]) -> bool:
    """Keys the config accepts with a default though params.yaml leaves them out."""
    from retrain.config import Params

    model: object = Params.model_fields.get(section) or Params.model_fields.get(section + "_")
    if model is None:
        return False
    node = getattr(model, "annotation", None)
    for key in keys:
        fields = getattr(node, "model_fields", {})
        if key not in fields:
            return False
        node = fields[key].annotation
    return True
