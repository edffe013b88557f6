"""Each stage process imports only what it uses (lightning ~4 s, GE ~4 s, evidently ~5 s)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "lightning", "great_expectations", "evidently", "optuna", "lightgbm", "prefect")
ALLOWED = {
    "retrain.config": set(),
    "retrain.cli": set(),
    "retrain.stages.validate": set(),  # GE is imported when the stage runs, not at import
    "retrain.stages.prepare": set(),
    "retrain.stages.tune": {"torch", "lightning", "optuna"},
    "retrain.stages.train": {"torch", "lightning"},
    "retrain.stages.evaluate": set(),
    "retrain.stages.drift": set(),  # Evidently is imported when the stage runs
    "retrain.ingest": set(),
    "retrain.stages.report": {"torch"},  # the network, for attributions; never Lightning
    # check-pr imports GE, Evidently and DVC only when it runs (the CLI stays fast).
    "retrain.prcheck.check": set(),
    "retrain.prcheck.render": set(),
    # The registry runs in the flow and the CLI: the gate scores with ONNX, not torch.
    "retrain.registry.gate": set(),
    "retrain.registry.champion": set(),
    "retrain.registry.record": set(),
    "retrain.registry.serving": set(),
    "retrain.registry.reproduce": set(),
    # The service imports GE only to explain a rejected request (warmed after start-up).
    "retrain.serve.app": set(),
    "retrain.monitoring.traffic": set(),
}


def _loaded(module: str) -> set[str]:
    code = (
        f"import sys, json, {module}; "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_stage_imports_only_what_it_uses(module):
    assert _loaded(module) <= ALLOWED[module]
