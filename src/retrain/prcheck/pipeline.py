"""DVC's view of a pull request: what changed in the inputs, params and metrics.

Every call runs the `dvc` command line with the project's interpreter first on PATH, the way
the stages run, so `dvc repro` here is the same `dvc repro` a developer runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from retrain.infra import dvc
from retrain.infra.dvc import DvcError, json_output, stage_order, stages_run
from retrain.model_key import upgrade_metrics_diff
from retrain.project import PARAMS_FILE

# `dvc status` entries that mean an input of a stage changed. A missing output alone
# ("deleted", "not in cache") is not a change of the pull request: it is a checkout that
# has not pulled everything, and rerunning would only rebuild what the base already has.
_INPUT_CHANGES = ("modified", "new", "added")


def changed_inputs(status: dict[str, Any]) -> dict[str, list[str]]:
    """Stage (or .dvc file) -> what changed in its inputs, from `dvc status --json`.

    `{"train": [{"changed deps": {<params file>: {"train": "modified"}}}]}` becomes
    `{"train": ["<params file>: train modified"]}`; missing outputs are left out.
    """
    out: dict[str, list[str]] = {}
    for stage, entries in status.items():
        reasons = []
        for entry in entries if isinstance(entries, list) else [entries]:
            if isinstance(entry, str):  # "changed checksum", "always changed"
                reasons.append(entry)
                continue
            for kind, items in entry.items():
                # A stage's own outputs are results; a .dvc file's output is its data.
                if kind == "changed outs" and not stage.endswith(".dvc"):
                    continue
                if not isinstance(items, dict):
                    reasons.append(kind)
                    continue
                for path, state in items.items():
                    if isinstance(state, dict):  # a params file: section -> state
                        keys = ", ".join(f"{k} {v}" for k, v in state.items())
                        reasons.append(f"{path}: {keys}")
                    elif state in _INPUT_CHANGES:
                        reasons.append(f"{path} {state}")
        if reasons:
            out[stage] = reasons
    return out


@dataclass
class PipelineResult:
    """What `dvc repro` did (or why it did not run), and the params and metrics diffs."""

    changed: dict[str, list[str]] = field(default_factory=dict)
    reran: bool = False
    stages_run: list[str] = field(default_factory=list)
    skipped_because: str | None = None
    error: str | None = None
    lock_changed: bool = False  # dvc.lock differs from the commit after the re-run
    params_diff: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics_diff: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _flatten(diff: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{file: {key: {old, new, ...}}} -> {"file:key" or "key": {...}} (key alone if one file)."""
    files = [f for f, keys in diff.items() if keys]
    out = {}
    for file in files:
        for key, change in diff[file].items():
            out[key if len(files) == 1 and file == PARAMS_FILE else f"{file}:{key}"] = change
    return out


def params_diff(root: Path, base: str) -> dict[str, dict[str, Any]]:
    """`dvc params diff <base>`: every param whose value differs, keyed `section.key`."""
    return _flatten(json_output(root, "params", "diff", base))


def metrics_diff(root: Path, base: str) -> dict[str, dict[str, Any]]:
    """`dvc metrics diff <base> --all`: every metric (changed or not), keyed `file:key`."""
    raw = json_output(root, "metrics", "diff", base, "--all")
    rows = {f"{f}:{k}": v for f, keys in raw.items() for k, v in (keys or {}).items()}
    # A base from before the model key's rename says `mlp.x` where the head says `tabm.x`.
    return upgrade_metrics_diff(rows)[0]


def repro(root: Path) -> tuple[list[str], str | None]:
    """Run `dvc repro`; the stages that ran, and the error's last lines if it failed."""
    lines = dvc.run(root, "repro", check=False)
    printed = stages_run(lines)
    ran = [s for s in stage_order(root) if s in printed]
    if lines.code == 0:
        return ran, None
    tail = [ln.strip() for ln in lines if ln.strip()][-4:]
    return ran, f"`dvc repro` failed (exit {lines.code}): " + " / ".join(tail)


def check_pipeline(root: Path, base: str, *, rerun: bool, blocked: str | None) -> PipelineResult:
    """Params diff, then `dvc repro` when inputs changed (unless told not to), then metrics diff.

    Args:
        root: the head checkout.
        base: the base commit.
        rerun: run `dvc repro` when `dvc status` shows changed inputs.
        blocked: a reason not to run the pipeline at all (a blocking validation failure).
    """
    result = PipelineResult()
    try:
        result.params_diff = params_diff(root, base)
    except DvcError as err:
        result.notes.append(f"params diff unavailable: {err}")
    try:
        result.changed = changed_inputs(json_output(root, "status"))
    except DvcError as err:
        result.notes.append(f"dvc status failed: {err}")
    if result.changed:
        if blocked:
            result.skipped_because = blocked
        elif not rerun:
            result.skipped_because = "--no-repro"
        else:
            result.stages_run, result.error = repro(root)
            result.reran = True
    try:
        result.metrics_diff = metrics_diff(root, base)
    except DvcError as err:
        result.notes.append(f"metrics diff unavailable: {err}")
    return result
