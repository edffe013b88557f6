"""Three recorded retrains on a small git + DVC repository, written by the real record code
(`registry.record.write`) with what the pipeline would have left behind: metrics with both
baselines, plot data and slice metrics that differ run by run. No pipeline runs: seconds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrain.config import Params, load_params_at
from retrain.registry import record, versions
from retrain.registry.gate import GateResult
from tests.conftest import REPO, telco_params

NAME = "churn-model"
GRID = [0.0, 0.25, 0.5, 0.75, 1.0]


def sh(repo: Path, *args: str) -> str:
    return subprocess.run([*args], cwd=repo, capture_output=True, text=True, check=True).stdout


def dvc(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "dvc"
    return subprocess.run([str(exe), *args], cwd=repo, capture_output=True, text=True)


def _init(root: Path) -> None:
    for name in (".gitignore", "dvc.yaml"):
        shutil.copy2(REPO / name, root / name)
    (root / "params.yaml").write_text(yaml.safe_dump(telco_params(), sort_keys=False))
    (root / "src").mkdir()
    (root / "src" / "code.py").write_text("x = 1\n")
    (root / "data.dvc").write_text("outs:\n- md5: aaaa.dir\n  path: data/raw\n")
    sh(root, "git", "init", "-q", "-b", "main")
    dvc(root, "init", "-q")
    # The project's offline plots template, as the checkout's .dvc/config names it.
    shutil.copy2(REPO / ".dvc" / "plots.html", root / ".dvc" / "plots.html")
    # ... and the Vega-Lite templates dvc.yaml's plots name (.dvc/plots/).
    shutil.copytree(REPO / ".dvc" / "plots", root / ".dvc" / "plots")
    with (root / ".dvc" / "config").open("a") as fh:
        fh.write("[core]\n    analytics = false\n[plots]\n    html_template = plots.html\n")
    sh(root, "git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    sh(root, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")


def model_key() -> str:
    """Our model's key (`mlp`, `tabm` after the rename), as dvc.yaml's ROC plot names it: the
    evaluate metrics and the plot data of these fake runs use the pipeline's own key."""
    plots = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    roc = next(p["roc"] for p in plots if "roc" in p)
    return str(next(iter(roc["y"].values()))[0])


def _curve(k: float) -> list[float]:
    return [round(x**k, 4) for x in GRID]


def pipeline_outputs(params: Params, auc: float) -> None:
    """What the evaluate and report stages would write, every number moved by `auc`."""
    p = params.paths

    def less(d: float) -> float:
        return round(auc - d, 6)

    ours = {"roc_auc": auc, "pr_auc": less(0.2), "ece": 0.02}
    metrics = {
        "threshold": 0.4,
        model_key(): ours,
        "logreg": {"roc_auc": less(0.01), "pr_auc": less(0.21)},
        "lightgbm": {"roc_auc": less(0.005), "pr_auc": less(0.205)},
    }
    k = 1 / (1 + 4 * (auc - 0.5))  # a higher AUC bends the curve further up
    roc = [
        {"fpr": x, model_key(): a, "logreg": b, "lightgbm": c}
        for x, a, b, c in zip(GRID, _curve(k), _curve(k * 1.1), _curve(k * 1.05), strict=True)
    ]
    pr = [
        {"recall": x, model_key(): 1 - a / 2, "logreg": 0.5, "lightgbm": 0.6}
        for x, a in zip(GRID, _curve(k), strict=True)
    ]
    calibration = [{"mean_predicted": x, "fraction_positive": x * auc} for x in GRID]
    one_year = {"n": 300, "metrics": {"roc_auc": less(0.05)}}
    slices = {"overall": ours, "slices": {"contract": {"One year": one_year}}}
    files: dict[Path, Any] = {
        p.metrics: metrics,
        p.roc_plot: roc,
        p.pr_plot: pr,
        p.calibration_plot: calibration,
        p.calibration_scaled_plot: calibration,
        p.attributions_plot: [{"column": "tenure", "mean_abs_attribution": auc}],
        p.slice_metrics: slices,
        p.best_params: {"params": {"lr": auc}},
        # The other metrics files dvc.yaml declares: `dvc metrics diff` reads them all.
        p.prepare_summary: {"rows": 100},
        p.calibration_metrics: {"ece": 0.02},
        p.attributions: {"tenure": auc},
        p.drift_report: {"share_drifted": 0.0},
    }
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
    p.confusion_plot.write_text("actual,predicted\n1,1\n0,0\n1,0\n")
    (params.paths.data_pin.parent / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")


def gate(decision: str, auc: float, champion: float | None, reasons: list[str]) -> GateResult:
    promote = decision in ("first", "promoted")
    holdout = {"roc_auc": round(auc - 0.002, 6)}
    champ = None if champion is None else {"roc_auc": champion}
    return GateResult(decision, promote, reasons, "roc_auc", 0.002, 100, holdout, champ)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Runs:
    repo: Path
    records: list[dict[str, Any]]


RUNS = [  # reason, auc, decision, champion's holdout AUC, trigger
    ("manual", 0.80, "first", None, None),
    (
        "drift",
        0.84,
        "promoted",
        0.79,
        {
            "batch": "b1.csv",
            "reasons": ["7 of 19 drifted"],
            "monitor_run": {"id": "abc-123", "name": "monitor-b1"},
        },
    ),
    ("schedule", 0.82, "rejected", 0.838, None),
]


@pytest.fixture(scope="session")
def three_runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("history") / "repo"
    root.mkdir()
    _init(root)
    records = []
    for reason, auc, decision, champ_auc, trigger in RUNS:
        params = load_params_at(root)
        start = record.begin(root, params, reason, record.new_run_id())
        pipeline_outputs(params, auc)
        reasons = [f"{decision}: AUC {auc}"]
        records.append(
            record.write(
                root,
                params,
                start,
                gate=gate(decision, auc, champ_auc, reasons),
                champion=versions.in_stage(root, NAME, "prod"),
                warm_start={"champion": None, "params": None},
                stages={"train": True},
                trigger=trigger,
            )
        )
    return Runs(root, records)
