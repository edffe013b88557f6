"""Each stage process imports only what it uses (lightning ~4 s, GE ~4 s, evidently ~5 s):
importing a stage module loads no heavy library (the stage imports them on the code path that
needs them), and a stage with nothing to do runs without them (bench/startup.py times it)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from tests.conftest import params_in

HEAVY = ("torch", "lightning", "great_expectations", "evidently", "optuna", "lightgbm", "prefect")
ALLOWED = {
    "retrain.config": set(),
    "retrain.cli": set(),
    "retrain.stages.validate": set(),  # GE is imported when the stage runs, not at import
    "retrain.stages.prepare": set(),
    "retrain.stages.tune": set(),  # Optuna, torch, Lightning only when a search runs
    "retrain.stages.train": set(),  # torch and Lightning when it trains
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


def test_a_tune_stage_with_nothing_to_search_imports_no_heavy_library(tmp_path, small_params_raw):
    # tune.n_trials 0 writes the model section as the best parameters: no Optuna, no torch.
    # Before issue 24 the stage module imported Optuna, torch and Lightning (~6-18 s) first.
    raw = copy.deepcopy(small_params_raw)
    raw["tune"]["n_trials"] = 0
    params = params_in(tmp_path, raw)
    given = tmp_path / "params.json"
    given.write_text(params.model_dump_json())
    heavy = [*HEAVY, "sklearn", "scipy"]
    code = (
        "import json, sys\n"
        "from retrain.config import parse_params\n"
        "from retrain.stages import tune\n"
        f"tune.run(parse_params(json.loads(open({str(given)!r}).read())))\n"
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == []
    assert json.loads(params.paths.best_params.read_text())["n_trials"] == 0
