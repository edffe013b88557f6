"""Model versions and stages as GTO git tags: `<name>@v3.0.0` registers a version (on the
record commit that built it), `<name>#prod#7` assigns it to prod, `<name>#prod!#8` takes prod
away from it. `gto show` reads exactly these tags.

GTO's rule for "which version is in prod" is: the highest version whose latest prod event is
an assignment. A promotion therefore assigns prod to the new (highest) version, and a
rollback unassigns prod from the current one, which hands prod back to the version before it.
Tags are created here (not with `gto assign`) so that a record's tags are published in the
same ref transaction as its commit; their names and messages are GTO's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrain.errors import RetrainError
from retrain.infra.git import GitError, git, make_tag, publish, tag_clock


class RegistryError(RetrainError):
    """The registry cannot do what was asked (nothing in prod, nothing to roll back to)."""


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    commit: str

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.version}"


def _state(repo: Path) -> Any:
    from gto.registry import GitRegistry

    with GitRegistry.from_url(str(repo)) as reg:
        return reg.get_state()


def _semver_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3])


def in_stage(repo: Path, name: str, stage: str) -> ModelVersion | None:
    """The version GTO reports in `stage` (as `gto show` does), or None."""
    artifact = _state(repo).find_artifact(name, create_new=True)
    found = artifact.get_vstages(registered_only=True).get(stage, [])
    if not found:
        return None
    return ModelVersion(name, found[0].version, found[0].commit_hexsha)


def registered(repo: Path, name: str) -> list[ModelVersion]:
    """Every registered version, oldest first."""
    artifact = _state(repo).find_artifact(name, create_new=True)
    found = [
        ModelVersion(name, v.version, v.commit_hexsha)
        for v in artifact.versions
        if v.is_registered and v.is_active
    ]
    return sorted(found, key=lambda v: _semver_key(v.version))


def next_version(repo: Path, name: str) -> str:
    """One major version above the highest registered one (v1.0.0 first)."""
    known = [_semver_key(v.version)[0] for v in registered(repo, name)]
    return f"v{max(known, default=0) + 1}.0.0"


def _next_counter(repo: Path, name: str) -> int:
    """GTO numbers stage events per artifact: `<name>#prod#<n>`."""
    pattern = re.compile(rf"^{re.escape(name)}#[^#]+#(\d+)$")
    counters = [
        int(m.group(1))
        for t in git(repo, "tag", "--list", f"{name}#*").split()
        if (m := pattern.match(t))
    ]
    return max(counters, default=0) + 1


def version_tags(
    repo: Path,
    name: str,
    stage: str,
    commit: str,
    *,
    register: str | None,
    promote: bool,
    note: str,
    env: dict[str, str],
) -> dict[str, str]:
    """Tag objects (name -> id, no refs yet) that register `register` at `commit` and, with
    `promote`, assign it to `stage`; published by the caller with the record."""
    tags: dict[str, str] = {}
    if register is None:
        return tags
    when = tag_clock(repo)
    reg_name = f"{name}@{register}"
    message = f"Registering artifact {name} version {register}\n\n{note}"
    tags[reg_name] = make_tag(repo, reg_name, commit, message, when, env)
    if promote:
        stage_tag = f"{name}#{stage}#{_next_counter(repo, name)}"
        tags[stage_tag] = make_tag(
            repo,
            stage_tag,
            commit,
            f"Assigning stage {stage} to artifact {name} version {register}\n\n{note}",
            when + 1,
            env,
        )
    return tags


def rollback(repo: Path, name: str, stage: str, env: dict[str, str]) -> tuple[str, str]:
    """Take `stage` away from its current version, which hands it back to the previous one.

    Returns:
        (the version that was in the stage, the version now in it).

    Raises:
        RegistryError: nothing is in the stage, or no earlier version ever was.
    """
    state = _state(repo)
    artifact = state.find_artifact(name, create_new=True)
    current = in_stage(repo, name, stage)
    if current is None:
        raise RegistryError(f"no version of {name} is in {stage}: nothing to roll back")
    earlier = [
        v
        for v in artifact.versions
        if v.version != current.version
        and stage in v.stages
        and v.stages[stage].is_active
        and _semver_key(v.version) < _semver_key(current.version)
    ]
    if not earlier:
        raise RegistryError(
            f"{name} {current.version} is the first version ever in {stage}: "
            "there is no earlier one to roll back to"
        )
    previous = max(earlier, key=lambda v: _semver_key(v.version)).version
    tag = f"{name}#{stage}!#{_next_counter(repo, name)}"
    message = (
        f"Unassigning stage {stage} from artifact {name} version {current.version}\n\n"
        f"rollback: {stage} returns to {previous}"
    )
    obj = make_tag(repo, tag, current.commit, message, tag_clock(repo), env)
    try:
        publish(repo, {tag: obj})
    except GitError as err:
        raise RegistryError(f"rollback of {name} failed: {err}") from None
    now = in_stage(repo, name, stage)
    if now is None or now.version != previous:
        raise RegistryError(f"after rollback {stage} is {now}, expected {previous}")
    return current.version, previous


# For registry.canary, which writes stage tags of its own.
def next_counter(repo: Path, name: str) -> int:
    """The number of the next stage event of artifact `name` (`<name>#<stage>#<n>`)."""
    return _next_counter(repo, name)


def assigned(repo: Path, name: str, stage: str) -> list[ModelVersion]:
    """Every version whose last `stage` event is an assignment, oldest first (GTO reports
    the highest as the one in the stage)."""
    artifact = _state(repo).find_artifact(name, create_new=True)
    found = [
        ModelVersion(name, v.version, v.commit_hexsha)
        for v in artifact.versions
        if stage in v.stages and v.stages[stage].is_active
    ]
    return sorted(found, key=lambda v: _semver_key(v.version))


def newer(a: str, b: str) -> bool:
    """Version `a` is above `b` (semver order, as GTO compares them)."""
    return _semver_key(a) > _semver_key(b)
