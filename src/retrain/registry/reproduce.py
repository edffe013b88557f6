"""Replay a recorded retrain in a fresh clone and compare it with its record.

In a temporary clone: check out `run/<id>`, point DVC at this checkout's remote, `dvc pull`
(the record promises its data and models are there), `dvc repro --force` with the clone's
own code, then compare the pinned evaluation set the gate scored (the record's
`data.holdout`), every output hash in dvc.lock, the test metrics and the tuned parameters
with what the record holds. Any difference is a failed replay.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrain.config import Params, load_params_at
from retrain.errors import RetrainError
from retrain.infra import dvc
from retrain.infra.dvc import LOCK_FILE, lock_outputs
from retrain.infra.git import git
from retrain.model_key import RENAME_NOTE, upgrade_metrics
from retrain.project import rel
from retrain.registry import record


class ReplayError(RetrainError):
    """The replay could not run (no remote, no such record, a stage failed)."""


@dataclass(frozen=True)
class Row:
    kind: str  # "artifact", "metric" or "tuned"
    name: str
    recorded: Any
    reproduced: Any
    compared: bool = True

    @property
    def same(self) -> bool:
        return self.recorded == self.reproduced


@dataclass
class Replay:
    run_id: str
    clone: Path
    rows: list[Row] = field(default_factory=list)
    environment: list[str] = field(default_factory=list)
    requirements_lock: str | None = None  # md5 of the lock the record's environment came from
    notes: list[str] = field(default_factory=list)  # how the record was read (retrain.model_key)

    @property
    def differences(self) -> list[Row]:
        return [r for r in self.rows if r.compared and not r.same]

    @property
    def identical(self) -> bool:
        return not self.differences


def default_remote(root: Path) -> tuple[str, str]:
    """(name, URL) of the checkout's default DVC remote; a local path comes back absolute."""
    found = dvc.default_remote(root)
    if found is None:
        raise ReplayError(f"{root}: no default DVC remote; records cannot be pulled")
    return found


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def _environment_notes(recorded: dict[str, Any], model_card: Path) -> list[str]:
    device = json.loads(model_card.read_text()).get("device") if model_card.exists() else None
    now = record.environment(device)
    notes = []
    for key in ("python", "platform", "device"):
        if recorded.get(key) != now[key]:
            notes.append(f"{key}: recorded {recorded.get(key)}, now {now[key]}")
    for name, version in now["packages"].items():
        was = recorded.get("packages", {}).get(name)
        if was != version:
            notes.append(f"{name}: recorded {was}, now {version}")
    return notes


def compare(
    params: Params,
    clone: Path,
    recorded_lock: str,
    recorded_metrics: dict[str, Any],
    recorded_tuned: dict[str, Any],
    notes: list[str] | None = None,
) -> list[Row]:
    """Rows of recorded vs reproduced: every dvc.lock output, every metric, tuned params.

    Metrics from before the model key's rename (the record's, or the record's code's) are
    read with the key as named now; `notes` then gets `RENAME_NOTE`."""
    paths = params.paths
    # The model cards name the git revision they were built from, which is the record's
    # parent during the run and the record itself during a replay: shown, not compared.
    cards = {rel(clone, p) for p in (paths.model_card, paths.model_card_md, paths.model_card_html)}
    before = lock_outputs(recorded_lock)
    after = lock_outputs((clone / LOCK_FILE).read_text())
    rows = [
        Row("artifact", path, before.get(path), after.get(path), compared=path not in cards)
        for path in sorted(set(before) | set(after))
    ]
    recorded_metrics, renamed = upgrade_metrics(recorded_metrics)
    metrics, renamed_now = upgrade_metrics(json.loads(paths.metrics.read_text()))
    if (renamed or renamed_now) and notes is not None and RENAME_NOTE not in notes:
        notes.append(RENAME_NOTE)
    old_m, new_m = _flatten(recorded_metrics), _flatten(metrics)
    rows += [Row("metric", k, old_m.get(k), new_m.get(k)) for k in sorted(set(old_m) | set(new_m))]
    tuned = json.loads(paths.best_params.read_text())
    old_t, new_t = _flatten(recorded_tuned), _flatten(tuned)
    rows += [Row("tuned", k, old_t.get(k), new_t.get(k)) for k in sorted(set(old_t) | set(new_t))]
    return rows


def holdout_rows(rec: dict[str, Any], params: Params, clone: Path) -> list[Row]:
    """The pinned evaluation set the record's gate scored (its `data.holdout`, issue 27)
    against what the clone pulled: the hash of paths.holdout as DVC computes it. None for a
    record that names none (before the holdout, or no labelled batch ingested yet)."""
    recorded = ((rec.get("data") or {}).get("holdout") or {}).get("md5")
    if recorded is None:
        return []
    pulled = dvc.workspace_hash(clone, params.paths.holdout)
    return [Row("data", rel(clone, params.paths.holdout_pin), recorded, pulled)]


def replay(
    root: Path,
    params: Params,
    run_id: str,
    *,
    keep: bool = False,
    on_line: Callable[[str], None] | None = None,
) -> Replay:
    """Rebuild run `run_id` in a fresh temporary clone and compare it with its record.

    Args:
        root: this checkout (its tags hold the records, its DVC remote the data).
        params: this checkout's params (only paths.run_record is read from them).
        run_id: the run, with or without the `run/` prefix.
        keep: keep the clone (its path is in the result) instead of deleting it.
        on_line: receives DVC's output as the replay runs.
    """
    rec = record.find_run(root, params, run_id)
    name, url = default_remote(root)
    tmp = Path(tempfile.mkdtemp(prefix=f"retrain-reproduce-{rec['run_id']}-"))
    clone = tmp / "repo"
    try:
        git(tmp, "clone", "-q", str(root), str(clone))
        git(clone, "-c", "advice.detachedHead=false", "checkout", "-q", f"run/{rec['run_id']}")
        dvc.set_remote_url(clone, name, url)
        cloned = load_params_at(clone)
        recorded_lock = (clone / LOCK_FILE).read_text()
        recorded_metrics = json.loads(cloned.paths.metrics.read_text())
        # The record's code, not the installed checkout's, must run the stages.
        env = {"PYTHONPATH": str(clone / "src")}
        dvc.run(clone, "pull", on_line=on_line, env=env)
        dvc.run(clone, "repro", "--force", on_line=on_line, env=env)
        result = Replay(rec["run_id"], clone)
        result.rows = holdout_rows(rec, cloned, clone) + compare(
            cloned, clone, recorded_lock, recorded_metrics, rec["tuned_params"], result.notes
        )
        result.environment = _environment_notes(
            rec.get("environment", {}), cloned.paths.model_card
        )
        recorded_lock_md5 = (rec.get("requirements_lock") or {}).get("md5")
        result.requirements_lock = recorded_lock_md5
        here = record.dependency_lock(root)["md5"]
        if recorded_lock_md5 != here:
            result.environment.append(
                f"{record.LOCK_FILE}: recorded {recorded_lock_md5}, this checkout {here} "
                f"(install the record's: git show run/{rec['run_id']}:{record.LOCK_FILE})"
            )
        return result
    except RetrainError as err:
        raise ReplayError(f"replay of run/{rec['run_id']} failed: {err}") from None
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def _short(value: Any) -> str:
    if value is None:
        return "(absent)"
    if isinstance(value, str) and len(value) == 32:
        return value[:12]  # an md5
    return str(value)


def report(result: Replay) -> str:
    """The side-by-side table the CLI prints."""
    width = max((len(r.name) for r in result.rows), default=10) + 2
    lines = [f"replay of run/{result.run_id}"]
    if result.requirements_lock:
        lines.append(f"environment: {record.LOCK_FILE} md5 {result.requirements_lock}")
    lines += [f"note: {note}" for note in result.notes]
    lines.append("")
    kind = None
    for row in result.rows:
        if row.kind != kind:
            kind = row.kind
            lines.append(f"{kind:<{width}} {'recorded':<14} {'reproduced':<14}")
        status = "same" if row.same else "DIFFERENT"
        if not row.compared:
            status = "not compared (names the git revision it was built from)"
        lines.append(
            f"{row.name:<{width}} {_short(row.recorded):<14} {_short(row.reproduced):<14} {status}"
        )
    if result.environment:
        lines += ["", "environment differs from the record (may explain differences):"]
        lines += [f"  {note}" for note in result.environment]
    diffs = result.differences
    lines += [
        "",
        "identical: every artifact, metric and tuned parameter matches the record"
        if not diffs
        else f"DIFFERENT: {len(diffs)} of {len(result.rows)} values differ from the record",
    ]
    return "\n".join(lines)
