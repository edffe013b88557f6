"""The record of a retrain: one git commit of everything needed to rebuild it, tagged
`run/<run-id>` (annotated), with its data and models in the DVC remote.

The commit holds the code (the revision the retrain started from, which must be clean;
requirements.lock, whose hash the record names, is part of it), data.dvc, params.yaml as the
run used it (overrides included), dvc.lock, the metrics, the warm-start file and
paths.run_record, a JSON summary: reason, data version, tuned parameters, metrics, the
gate's decision and numbers, the model version and whether it was promoted. The record is
written last, after `dvc push`, and published in one ref transaction with the GTO tags (see
infra.git): a retrain that dies earlier leaves no record and no registry change.

A run with overrides applied them for itself only (registry.overrides): its record commit,
the one the tags name, holds params.yaml with them; the branch moves to one more commit on
top that puts back the params.yaml the run found, so the next run starts from that.
"""

from __future__ import annotations

import json
import platform
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from retrain.config import PARAMS_FILE, Params
from retrain.data.io import SUFFIXES
from retrain.errors import RetrainError
from retrain.files import json_text
from retrain.hashing import file_md5
from retrain.infra import dvc
from retrain.infra.dvc import lock_outputs, read_pin
from retrain.infra.git import changed_code, git, head, show
from retrain.model_key import OURS
from retrain.project import managed_paths, rel
from retrain.registry import publish, versions
from retrain.registry.gate import GateResult

RUN_TAGS = "refs/tags/run/"
# The lock of every dependency that `make install` installs from (see Makefile, `make lock`).
LOCK_FILE = "requirements.lock"
PACKAGES = (
    "torch",
    "lightning",
    "optuna",
    "numpy",
    "pandas",
    "scikit-learn",
    "lightgbm",
    "onnx",
    "onnxruntime",
    "dvc",
)


class DirtyCheckout(RetrainError):
    """Tracked code differs from HEAD: a record could not name the code that ran."""


@dataclass(frozen=True)
class RunStart:
    run_id: str
    reason: str
    started_at: str
    code_revision: str


def new_run_id(now: datetime | None = None) -> str:
    """UTC time to the second plus a short random suffix: sortable and unique."""
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


def begin(root: Path, params: Params, reason: str, run_id: str) -> RunStart:
    """Check the checkout can be recorded; note the code revision the run starts from.

    Raises:
        DirtyCheckout: tracked files outside the pipeline's own paths differ from HEAD.
    """
    code = changed_code(root, managed_paths(root, params))
    if code:
        shown = ", ".join(code[:5]) + (" ..." if len(code) > 5 else "")
        raise DirtyCheckout(
            f"{root}: tracked files differ from HEAD ({shown}); commit or stash them first, "
            "so that the run's record names the code that ran"
        )
    return RunStart(
        run_id=run_id,
        reason=reason,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        code_revision=head(root),
    )


def environment(device: str | None = None) -> dict[str, Any]:
    """Interpreter, machine, training device and the versions of the packages that shape
    the numbers."""
    pkgs: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pkgs[name] = None
    return {
        "python": platform.python_version(),
        "platform": f"{platform.system()}-{platform.machine()}",
        "device": device,
        "packages": pkgs,
    }


def dependency_lock(root: Path) -> dict[str, str | None]:
    """requirements.lock (path and md5) in `root`: the environment a replay must install."""
    path = root / LOCK_FILE
    return {"file": LOCK_FILE, "md5": file_md5(path) if path.exists() else None}


# Our model's key in paths.metrics (metrics/evaluate.json): the record's `metrics` are its
# numbers. The one place the record names it.
OUR_MODEL = OURS
STATUS = {  # a record's decision as `retrain runs` and the commit message say it
    "first": "first model, now in prod",
    "promoted": "promoted to prod",
    "rejected": "not promoted",
    "unchanged": "unchanged",
    "insufficient": "not promoted (too little evidence)",
}


@dataclass(frozen=True)
class RunFiles:
    """What the pipeline left in the workspace that the record holds, read once."""

    lock_text: str
    metrics: dict[str, Any]
    tuned: dict[str, Any]
    data: dict[str, Any]  # pin, md5, batches; holdout (pin, md5) where there is one
    params_md5: str
    requirements_lock: dict[str, str | None]
    device: str | None  # where the model was trained (cpu, cuda:0), as train noted it


def _device(model_card: Path) -> str | None:
    if not model_card.exists():
        return None
    return json.loads(model_card.read_text()).get("device")


def _batches(params: Params) -> list[str]:
    folder = params.paths.batches
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if p.suffix in SUFFIXES)


def _holdout(root: Path, params: Params) -> dict[str, Any]:
    """The pinned evaluation set's version (its pin and md5, what the gate scored beside the
    test split), under `holdout`; nothing where there is none (records read as before)."""
    pin = params.paths.holdout_pin
    if not pin.exists():
        return {}
    return {"holdout": {"pin": rel(root, pin), "md5": read_pin(pin).md5}}


def gather(root: Path, params: Params) -> RunFiles:
    """Read the run's files: dvc.lock, metrics, tuned parameters, the data pin."""
    paths = params.paths
    return RunFiles(
        lock_text=(root / dvc.LOCK_FILE).read_text(),
        metrics=json.loads(paths.metrics.read_text()),
        tuned=json.loads(paths.best_params.read_text()),
        data={
            "pin": rel(root, paths.data_pin),
            "md5": read_pin(paths.data_pin).md5,
            "batches": _batches(params),
            **_holdout(root, params),
        },
        params_md5=file_md5(root / PARAMS_FILE),
        requirements_lock=dependency_lock(root),
        device=_device(paths.model_card),
    )


def our_metrics(evaluate: dict[str, Any]) -> dict[str, Any]:
    """The record's `metrics`: our model's test metrics (the task's own, retrain.task), after
    the decision threshold where the task has one (binary only: evaluate writes none for a
    multiclass or regression model). Binary records keep their bytes: threshold first."""
    threshold = {"threshold": evaluate["threshold"]} if "threshold" in evaluate else {}
    return {**threshold, **evaluate[OUR_MODEL]}


def build(
    start: RunStart,
    files: RunFiles,
    *,
    model_name: str,
    gate: GateResult,
    champion: versions.ModelVersion | None,
    register: str | None,
    warm_start: dict[str, Any],
    stages: dict[str, bool],
    context: dict[str, Any],
) -> dict[str, Any]:
    """The record (pure: from what was read and decided; no file, no git).

    Args:
        register: the version this run registers; None when it registers none (unchanged).
        context: finished_at, overrides, trigger, flow_run_id and environment, as recorded.
    """
    prod = register if gate.promote else (champion.version if champion else None)
    return {
        "run_id": start.run_id,
        "reason": start.reason,
        "started_at": start.started_at,
        "finished_at": context["finished_at"],
        "code_revision": start.code_revision,
        "data": files.data,
        "params_md5": files.params_md5,
        "overrides": context.get("overrides") or None,
        "requirements_lock": files.requirements_lock,
        "warm_start": warm_start,
        "tuned_params": files.tuned,
        # How the study ran: sequential, or batched over workers (retrain.tuning.parallel).
        "tuning": files.tuned.get("tuning", {"mode": "sequential"}),
        "metrics": our_metrics(files.metrics),
        "artifacts": lock_outputs(files.lock_text),
        "stages_ran": stages,
        # The decision, its numbers and the rules applied (params.yaml's, never overrides).
        "gate": gate.to_dict(),
        "champion": None
        if champion is None
        else {"version": champion.version, "commit": champion.commit},
        "model": {
            "name": model_name,
            "version": register or (champion.version if champion else None),
            "registered": register is not None,
            "promoted": gate.promote,
            "prod": prod,
        },
        "trigger": context.get("trigger"),
        "flow_run_id": context.get("flow_run_id"),
        "environment": context["environment"],
    }


def summary(record: dict[str, Any]) -> str:
    """One line: the record's commit and tag message."""
    model, gate = record["model"], record["gate"]
    metric = gate["metric"]
    value = record["metrics"].get(metric)
    status = STATUS.get(gate["decision"], gate["decision"])
    return (
        f"retrain {record['run_id']} ({record['reason']}): {metric} {value}; "
        f"{model['name']} {model['version']} {status}"
    )


def write(
    root: Path,
    params: Params,
    start: RunStart,
    *,
    gate: GateResult,
    champion: versions.ModelVersion | None,
    warm_start: dict[str, Any],
    stages: dict[str, bool],
    trigger: dict[str, Any] | None = None,
    flow_run_id: str | None = None,
    overrides: dict[str, Any] | None = None,
    params_before: str | None = None,
) -> dict[str, Any]:
    """Build the record (returned, and committed as paths.run_record), then commit and tag
    it and register (maybe promote) the model, all at once (registry.publish). Call it last,
    after `dvc push`: a record promises that its data and models are in the remote.

    Args:
        overrides: the run's overrides (recorded as they were asked for; None when none).
        params_before: with overrides, params.yaml as the run found it: the branch's commit
            on top of the record puts it back.
    """
    files, reg = gather(root, params), params.registry
    register = (  # an unchanged model (the champion's bytes) registers nothing
        None if gate.decision == "unchanged" else versions.next_version(root, reg.model_name)
    )
    context = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "overrides": overrides,
        "trigger": trigger,
        "flow_run_id": flow_run_id,
        "environment": environment(files.device),
    }
    rec = build(
        start,
        files,
        model_name=reg.model_name,
        gate=gate,
        champion=champion,
        register=register,
        warm_start=warm_start,
        stages=stages,
        context=context,
    )
    publish.publish_record(
        root,
        params,
        json_text(rec, default=str),
        publish.Publication(
            run_id=start.run_id,
            message=summary(rec),
            register=register,
            promote=gate.promote,
            params_before=params_before if overrides else None,
        ),
    )
    return rec


def list_runs(root: Path, params: Params) -> list[dict[str, Any]]:
    """Every recorded run, oldest first, each with its tag and commit."""
    out = git(
        root,
        "for-each-ref",
        "--sort=taggerdate",
        "--format=%(refname:strip=2) %(*objectname)",
        RUN_TAGS,
    )
    record_rel = rel(root, params.paths.run_record)
    runs = []
    for line in out.splitlines():
        tag, commit = line.split()
        text = show(root, tag, record_rel)
        if text is None:
            continue  # a run/ tag someone made by hand: not a record
        runs.append({**json.loads(text), "tag": tag, "commit": commit})
    return runs


def find_run(root: Path, params: Params, run_id: str) -> dict[str, Any]:
    """The record of `run_id` (or of the tag `run/<run_id>`)."""
    run_id = run_id.removeprefix("run/")
    text = show(root, f"refs/tags/run/{run_id}", rel(root, params.paths.run_record))
    if text is None:
        known = [r["run_id"] for r in list_runs(root, params)][-5:]
        raise RetrainError(f"no record run/{run_id}; recent runs: {', '.join(known) or 'none'}")
    return json.loads(text)
