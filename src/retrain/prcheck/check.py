"""`retrain check-pr`: the head of a pull request against its base, in one report.

Four checks, each reported even when another fails:
1. the expectation suite on the head's data, and what the pull request changes in the suites;
2. drift of the head's data against the base's data (from DVC, never from the workspace);
3. `dvc params diff` and `dvc metrics diff`, after `dvc repro` where inputs changed;
4. a verdict: blocked (exit 1), incomplete (exit 2: a check could not run) or passed (exit 0,
   possibly with warnings).

Blocking: a `critical` expectation failing, a file breaking the data contract ingest applies
(docs/operations.md, "The data contract"), unreadable data, an invalid params.yaml, or
`dvc repro` failing. Drift is a warning: a pull request that adds data is expected to move
distributions, and a reviewer decides whether the move is real (`--fail-on-drift` makes a
tripped drift gate blocking).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrain.config import ConfigError, Params, Paths
from retrain.errors import DataError, RetrainError
from retrain.infra import dvc, git
from retrain.infra.dvc import LOCK_FILE, pinned_md5, read_pin, workspace_hash
from retrain.prcheck.data import (
    DataComparison,
    describe_shift,
    fetch_base_data,
    file_changes,
    for_drift,
    read_folder,
    shared_schema,
)
from retrain.prcheck.pipeline import PipelineResult, check_pipeline, params_diff
from retrain.prcheck.suites import ExpectationChange, diff_suite
from retrain.project import PARAMS_FILE, Project
from retrain.validation.raw import bytes_problems, contract_problems, validate_raw
from retrain.validation.suite import ValidationResult

PASSED, WARNED, BLOCKED, INCOMPLETE = "passed", "passed with warnings", "blocked", "incomplete"
EXIT_CODES = {PASSED: 0, WARNED: 0, BLOCKED: 1, INCOMPLETE: 2}


@dataclass
class PrCheck:
    """Everything the report says, as data (report.json is this, as JSON)."""

    base_ref: str
    base_commit: str
    head: str
    # paths.metrics relative to the root, as `dvc metrics diff` names it (the headline table's
    # source; params.yaml may rename it).
    metrics_file: str = ""
    # The head's task (retrain.task) and the gate's metric: which metrics the report's table
    # shows, which way each is better, and the one the verdict line names.
    task: str = "binary"
    gate_metric: str = "roc_auc"
    params_error: str | None = None
    validation: list[ValidationResult] = field(default_factory=list)
    validation_error: str | None = None
    contract: list[str] = field(default_factory=list)  # data contract breaches, one line each
    suite_changes: list[ExpectationChange] = field(default_factory=list)
    data: DataComparison | None = None
    drift: dict[str, Any] | None = None
    drift_note: str | None = None
    pipeline: PipelineResult = field(default_factory=PipelineResult)
    artifacts: dict[str, str] = field(default_factory=dict)
    blocking: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.blocking:
            return BLOCKED
        if self.errors:
            return INCOMPLETE
        return WARNED if self.warnings else PASSED

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "base_ref": self.base_ref,
            "base_commit": self.base_commit,
            "head": self.head,
            "blocking": self.blocking,
            "warnings": self.warnings,
            "errors": self.errors,
            "params_error": self.params_error,
            "validation": [r.to_dict() for r in self.validation],
            "validation_error": self.validation_error,
            "contract": self.contract,
            "suite_changes": [c.to_dict() for c in self.suite_changes],
            "data": None if self.data is None else self.data.to_dict(),
            "drift": self.drift,
            "drift_note": self.drift_note,
            "pipeline": self.pipeline.to_dict(),
            "artifacts": self.artifacts,
            "task": self.task,
            "gate_metric": self.gate_metric,
        }


def _rel(root: Path, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def _validate(
    check: PrCheck, root: Path, params: Params, head_frames: dict[str, Any], out: Path
) -> None:
    names = list(head_frames)
    raw = params.paths.raw_data
    folder = raw if raw.is_dir() else raw.parent
    for i, name in enumerate(names):
        docs = out / "data_docs" if i == len(names) - 1 else None
        check.validation.append(
            validate_raw(head_frames[name], params, _rel(root, folder / name), data_docs_dir=docs)
        )
    for result in check.validation:
        # Personal data and absent declared columns block as a critical expectation does.
        check.blocking += [p.message(result.source) for p in result.pii]
        check.blocking += result.schema_messages()
        for blocking, target in ((True, check.blocking), (False, check.warnings)):
            failed = [f for f in result.failures if f.blocking == blocking]
            if failed:
                kind = "critical" if blocking else "non-blocking"
                where = ", ".join(f"{f.column or 'table'} ({f.expectation})" for f in failed)
                target.append(
                    f"{result.source}: {len(failed)} {kind} expectation(s) failed: {where}"
                )
    if any(r.data_docs for r in check.validation):
        check.artifacts["Data Docs (Great Expectations)"] = _rel(
            root, out / "data_docs" / "index.html"
        )
    _contract(check, root, params, head_frames)


def _contract(check: PrCheck, root: Path, params: Params, head_frames: dict[str, Any]) -> None:
    """The byte checks and data contract ingest applies to a batch, on the head's files: a
    batch committed by hand must not reach `prepare` through a pull request either."""
    raw = params.paths.raw_data
    folder = raw if raw.is_dir() else raw.parent
    sources = {name: _rel(root, folder / name) for name in head_frames}
    files = [(sources[name], folder / name) for name in head_frames]
    check.contract = bytes_problems(files, params.ingest.max_field_bytes)
    failed = {r.source for r in check.validation if not r.success}
    tables = [(sources[name], df) for name, df in head_frames.items()]
    check.contract += contract_problems(tables, params.dataset, failed)
    check.blocking += check.contract


def _suites(check: PrCheck, root: Path, params: Params) -> None:
    folder = params.dataset.suite.parent
    rel = _rel(root, folder)
    names = {
        Path(p).name for p in git.files_at(root, check.base_commit, rel) if p.endswith(".json")
    }
    names |= {p.name for p in folder.glob("*.json")}
    for name in sorted(names):
        label = f"{rel}/{name}"
        try:
            old_text = git.show(root, check.base_commit, label)
            head_file = folder / name
            old = json.loads(old_text) if old_text else None
            new = json.loads(head_file.read_text()) if head_file.exists() else None
        except json.JSONDecodeError as err:
            check.blocking.append(f"{label}: not valid JSON ({err})")
            continue
        check.suite_changes.extend(diff_suite(label, old, new))


def _data_and_drift(
    check: PrCheck,
    root: Path,
    params: Params,
    head_frames: dict[str, Any],
    out: Path,
    fail_on_drift: bool,
) -> None:
    raw = params.paths.raw_data
    raw_rel = _rel(root, raw)
    pin_rel = _rel(root, params.paths.data_pin)
    pin, head_pin = params.paths.data_pin, None
    try:
        head_pin = read_pin(pin)
    except DataError as err:
        check.blocking.append(str(err))
    data = DataComparison(
        path=raw_rel,
        base_pin=pinned_md5(git.show(root, check.base_commit, pin_rel)),
        head_pin=head_pin.md5 if head_pin else None,
        # DVC's hash of what the pin covers (raw_data may be one file of a pinned folder).
        head_workspace=workspace_hash(root, head_pin.path if head_pin else raw),
    )
    check.data = data
    if data.unpinned:
        check.warnings.append(
            f"{raw_rel} differs from what {pin_rel} pins: commit it (`dvc commit {pin_rel}`) "
            "and push the data (`dvc push`)"
        )
    if data.identical:
        check.drift_note = "the data is unchanged (same DVC hash at base and head): no drift"
        return
    if data.base_pin is None:
        check.drift_note = f"the base has no {pin_rel}: nothing to compare with"
        return
    with tempfile.TemporaryDirectory(prefix="retrain-pr-base-") as tmp:
        dest = Path(tmp) / raw.name
        try:
            data.base_source = fetch_base_data(
                root, check.base_commit, raw_rel, dest, data.base_pin
            )
            base_frames = read_folder(dest)
        except DataError as err:
            check.errors.append(f"base data: {err}")
            check.drift_note = f"not computed: {err}"
            return
        data.files = file_changes(dest, raw, base_frames, head_frames)
    if not head_frames:
        check.drift_note = "not computed: the head's data could not be read"
        return
    _drift(check, root, params, base_frames, head_frames, out, fail_on_drift)


def _drift(
    check: PrCheck,
    root: Path,
    params: Params,
    base_frames: dict[str, Any],
    head_frames: dict[str, Any],
    out: Path,
    fail_on_drift: bool,
) -> None:
    import pandas as pd

    from retrain.monitoring.drift import ColumnDrift, compute_drift, gate, target_is_numeric

    schema = params.dataset
    base = for_drift(pd.concat(base_frames.values(), ignore_index=True), schema)
    head = for_drift(pd.concat(head_frames.values(), ignore_index=True), schema)
    shared = shared_schema(schema, base, head)
    try:
        report = compute_drift(base, head, shared, params.drift, html=out / "drift.html")
    except Exception as err:  # Evidently fails in many ways on broken data; say so, go on
        cause = str(err).splitlines()[0] if str(err) else type(err).__name__
        check.drift_note = f"not computed: Evidently failed on the head's data ({cause})"
        check.errors.append(f"drift: {check.drift_note}")
        return
    verdict = gate(report, params.drift)
    columns = [*report.features, *([report.target] if report.target else [])]
    numeric_target = target_is_numeric(schema)  # a regression target: shift of its mean

    def numeric(c: ColumnDrift) -> bool:
        return c.kind == "numeric" or (c.kind == "target" and numeric_target)

    check.drift = {
        **report.to_dict(),
        "gate": {"tripped": verdict.tripped, "reasons": verdict.reasons},
        "max_share_drifted": params.drift.max_share_drifted,
        "shift": {
            c.column: describe_shift(base[c.column], head[c.column], numeric=numeric(c))
            for c in columns
        },
    }
    check.artifacts["Drift report (Evidently)"] = _rel(root, out / "drift.html")
    if verdict.tripped:
        target = check.blocking if fail_on_drift else check.warnings
        target.extend(f"drift gate tripped: {r}" for r in verdict.reasons)
    elif report.drifted_features:
        check.warnings.append(
            "drifted: " + ", ".join(report.drifted_features) + " (below the gate's share)"
        )


def _plots(check: PrCheck, root: Path, out: Path) -> None:
    """`dvc plots diff <base>` as HTML (the base's side where its plots are in git)."""
    made = dvc.succeeds(root, "plots", "diff", check.base_commit, "-o", str(out / "plots"))
    if made and (out / "plots" / "index.html").exists():
        check.artifacts["Plots (dvc plots diff)"] = _rel(root, out / "plots" / "index.html")


def report_folder(root: Path, out: Path | None) -> Path:
    """Where the report goes: `out` (relative to `root`), else params.yaml's paths.pr_reports
    (the default's when params.yaml itself is invalid: the report says so)."""
    if out is not None:
        return out if out.is_absolute() else root / out
    try:
        return Project.load(root).params.paths.pr_reports
    except ConfigError:
        return root / Paths.model_fields["pr_reports"].default


def run_check(
    root: Path, base: str, out: Path, *, rerun: bool = True, fail_on_drift: bool = False
) -> PrCheck:
    """Check the working tree at `root` against the commit `base` names; write nothing but
    the report folder `out` (and, when `dvc repro` runs, the pipeline's own outputs).

    Raises:
        GitError: `base` is not a commit in this clone (the only error that stops the check).
    """
    root = git.toplevel(root)
    commit = git.resolve(root, base)
    check = PrCheck(base_ref=base, base_commit=commit, head=git.describe_head(root))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    try:
        project = Project.load(root)
        params = project.params
        check.metrics_file = project.rel(params.paths.metrics)
        check.task, check.gate_metric = params.dataset.task, params.registry.gate.metric
    except ConfigError as err:
        check.params_error = str(err)
        check.blocking.append(f"{PARAMS_FILE} is invalid: {err}")
        try:
            check.pipeline.params_diff = params_diff(root, commit)
        except RetrainError as diff_err:
            check.pipeline.notes.append(f"params diff unavailable: {diff_err}")
        return check

    _suites(check, root, params)
    head_frames: dict[str, Any] = {}
    try:
        head_frames = read_folder(params.paths.raw_data)
    except DataError as err:
        check.validation_error = str(err)
        check.blocking.append(f"head data: {err}")
    if head_frames:
        try:
            _validate(check, root, params, head_frames, out)
        except DataError as err:  # e.g. the head's suite is missing or not valid JSON
            check.validation_error = str(err)
            check.blocking.append(f"validation: {err}")
    _data_and_drift(check, root, params, head_frames, out, fail_on_drift)

    blocked = None
    if check.blocking:
        blocked = "a blocking check failed"
    check.pipeline = check_pipeline(root, commit, rerun=rerun, blocked=blocked)
    pipe = check.pipeline
    if pipe.error:
        check.blocking.append(pipe.error)
    if pipe.reran:
        pipe.lock_changed = bool(git.changed_paths(root, LOCK_FILE))
    if pipe.changed and pipe.skipped_because == "--no-repro":
        check.warnings.append(
            "inputs changed but the pipeline was not re-run (--no-repro): the metrics are "
            "the committed ones"
        )
    check.errors.extend(pipe.notes)
    if pipe.reran or (root / "plots").exists():
        _plots(check, root, out)
    return check
