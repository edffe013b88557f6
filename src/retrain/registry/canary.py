"""The canary: a registered version in the canary stage (serve.canary_stage, GTO's
`candidate`) scores a stable share of request keys beside prod, until it is promoted or
aborted.

`start` assigns the stage to a version with a tag whose message carries the share (the
running service reads it when it sees the tag, as it sees prod change); `promote` moves prod
to the candidate and clears the stage, in one ref transaction; `abort` clears the stage. Each
appends a line to the canary log (CANARY_LOG beside the monitor's reports) and says what it
did; the caller notifies. Tags are GTO's own names and messages (see registry.versions).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retrain.config import Params
from retrain.infra.git import GitError, git, make_tag, publish, tag_clock
from retrain.registry import versions
from retrain.registry.versions import RegistryError

CANARY_LOG = "canary.jsonl"  # in paths.monitor_dir, beside the monitor's canary reports
SHARE = re.compile(r"^canary share ([0-9.]+)$", re.MULTILINE)


def share_of(repo: Path, name: str, stage: str, version: str) -> float | None:
    """The share `version` was given when it was last assigned to `stage`, if it said one."""
    prefix = f"Assigning stage {stage} to artifact {name} version {version}\n"
    tags = git(repo, "tag", "--list", f"{name}#{stage}#*").split()
    for tag in sorted(tags, key=lambda t: int(t.rsplit("#", 1)[1]), reverse=True):
        message = git(repo, "tag", "--list", "--format=%(contents)", tag)
        if message.startswith(prefix):
            found = SHARE.search(message)
            return float(found[1]) if found else None
    return None


def _stages(params: Params) -> tuple[str, str, str]:
    reg = params.registry
    return reg.model_name, reg.stage, params.serve.canary_stage


def _publish(repo: Path, tags: dict[str, str], what: str) -> None:
    try:
        publish(repo, tags)
    except GitError as err:
        raise RegistryError(f"canary {what} failed: {err}") from None


def start(
    repo: Path, params: Params, version: str, share: float, env: dict[str, str]
) -> dict[str, Any]:
    """Put registered `version` in the canary stage with `share` of request keys.

    Raises:
        RegistryError: the version is not registered, is prod, or a canary already runs.
    """
    name, prod_stage, stage = _stages(params)
    if not 0 < share <= 1:
        raise RegistryError(f"canary share {share:g}: must be in (0, 1]")
    known = {v.version: v for v in versions.registered(repo, name)}
    if version not in known:
        raise RegistryError(
            f"{name} {version} is not registered (known: {', '.join(known) or 'none'})"
        )
    prod = versions.in_stage(repo, name, prod_stage)
    if prod is not None and prod.version == version:
        raise RegistryError(f"{name} {version} is already in {prod_stage}: nothing to canary")
    running = versions.in_stage(repo, name, stage)
    if running is not None:
        raise RegistryError(
            f"{name} {running.version} is already in {stage}: promote or abort it first"
        )
    tag = f"{name}#{stage}#{versions.next_counter(repo, name)}"
    message = (
        f"Assigning stage {stage} to artifact {name} version {version}\n\ncanary share {share:g}"
    )
    obj = make_tag(repo, tag, known[version].commit, message, tag_clock(repo), env)
    _publish(repo, {tag: obj}, "start")
    return _line(params, "started", version, prod, prod, share)


def promote(repo: Path, params: Params, env: dict[str, str]) -> dict[str, Any]:
    """Move prod to the candidate and clear the canary stage, in one ref transaction.

    GTO's prod is the highest version whose last prod event is an assignment, so a higher
    version still assigned prod (the candidate was older) is unassigned in the same step.
    """
    name, prod_stage, stage = _stages(params)
    cand = _candidate(repo, name, stage)
    prod = versions.in_stage(repo, name, prod_stage)
    above = [
        v
        for v in versions.assigned(repo, name, prod_stage)
        if v.version != cand.version and versions.newer(v.version, cand.version)
    ]
    events = [(f"{prod_stage}#", cand, f"Assigning stage {prod_stage} to")]
    events += [(f"{prod_stage}!#", v, f"Unassigning stage {prod_stage} from") for v in above]
    events.append((f"{stage}!#", cand, f"Unassigning stage {stage} from"))
    when, counter, tags = tag_clock(repo), versions.next_counter(repo, name), {}
    for i, (kind, v, verb) in enumerate(events):  # GTO orders events by time: one second apart
        tag = f"{name}#{kind}{counter + i}"
        message = f"{verb} artifact {name} version {v.version}\n\ncanary promote"
        tags[tag] = make_tag(repo, tag, v.commit, message, when + i, env)
    _publish(repo, tags, "promote")
    now = versions.in_stage(repo, name, prod_stage)
    if now is None or now.version != cand.version:
        raise RegistryError(f"after canary promote {prod_stage} is {now}, not {cand.version}")
    return _line(params, "promoted", cand.version, prod, now, None)


def abort(repo: Path, params: Params, env: dict[str, str]) -> dict[str, Any]:
    """Clear the canary stage: prod alone serves again."""
    name, prod_stage, stage = _stages(params)
    cand = _candidate(repo, name, stage)
    tag = f"{name}#{stage}!#{versions.next_counter(repo, name)}"
    message = f"Unassigning stage {stage} from artifact {name} version {cand.version}"
    obj = make_tag(repo, tag, cand.commit, message + "\n\ncanary abort", tag_clock(repo), env)
    _publish(repo, {tag: obj}, "abort")
    prod = versions.in_stage(repo, name, prod_stage)
    return _line(params, "aborted", cand.version, prod, prod, None)


def _candidate(repo: Path, name: str, stage: str) -> versions.ModelVersion:
    cand = versions.in_stage(repo, name, stage)
    if cand is None:
        raise RegistryError(f"no version of {name} is in {stage}: no canary to end")
    return cand


def _line(
    params: Params,
    action: str,
    version: str,
    before: versions.ModelVersion | None,
    after: versions.ModelVersion | None,
    share: float | None,
) -> dict[str, Any]:
    """Append what happened to the canary log; return it."""
    line = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "action": action,
        "model": params.registry.model_name,
        "version": version,
        "share": share,
        "prod_before": before.version if before else None,
        "prod_after": after.version if after else None,
    }
    log = params.paths.monitor_dir / CANARY_LOG
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        f.write(json.dumps(line) + "\n")
    return line
