"""The one DVC client: every DVC command of the project, and every reading of DVC's output.

Commands run as `python -m dvc` with this interpreter first on PATH: a stage's
`cmd: python -m ...` resolves `python` through PATH, and a Prefect worker started from a
service manager may have the system Python first. `dvc repro` prints "Running stage
'<name>':" before each stage it runs (and nothing for a stage that is up to date); the
retrain flow, the pull-request check and the benchmarks all ask which stages ran.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from retrain.errors import DataError, RetrainError
from retrain.infra.proc import ENV_GROUP_TOKEN, record_group

# DVC's own fixed file names (not configurable in DVC, so not in params.yaml's `paths`).
LOCK_FILE = "dvc.lock"
PIPELINE_FILE = "dvc.yaml"

RUNNING_STAGE = re.compile(r"Running stage '([^']+)'")


class DvcError(RetrainError):
    """A DVC command failed; the message carries the last lines it printed."""


def dvc_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The inherited environment plus `extra`, with this interpreter first on PATH."""
    env = {**os.environ, **(extra or {})}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("GX_ANALYTICS_ENABLED", "false")
    return env


class Output(list[str]):
    """The lines a DVC command printed (stdout and stderr interleaved), and its exit code."""

    code: int = 0


def _failure(args: Iterable[str], code: int, lines: list[str], keep: int = 5) -> DvcError:
    tail = [ln.strip() for ln in lines if ln.strip()][-keep:]
    return DvcError(f"dvc {' '.join(args)} failed (exit {code}): " + " | ".join(tail))


def run(
    repo: Path,
    *args: str,
    on_line: Callable[[str], None] | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    lock_tries: int = 1,
    record: Path | None = None,
) -> Output:
    """Run `dvc *args` in `repo`; each output line goes to `on_line` as it is printed.

    Args:
        env: variables added to the inherited environment (e.g. PYTHONPATH for a replay).
        check: raise on a non-zero exit (else the lines are returned all the same).
        lock_tries: how many times to run it while another DVC command holds the repo's
            lock ("Unable to acquire lock"), 2 s apart.

    Returns:
        Every line printed (stdout and stderr interleaved), with the exit code (`.code`).

    Raises:
        DvcError: non-zero exit (with `check`), with the last lines of output.
    """
    extra = dict(env or {})
    if record is not None:
        extra[ENV_GROUP_TOKEN] = token = uuid.uuid4().hex
        record_group(record, token)  # before the start: a kill right after it leaves the token
    lines = _stream(repo, args, extra, on_line, record)
    if lines.code != 0:
        if lock_tries > 1 and any("Unable to acquire lock" in line for line in lines):
            time.sleep(2.0)
            again = lock_tries - 1
            return run(
                repo, *args, on_line=on_line, env=env, check=check, lock_tries=again, record=record
            )
        if check:
            raise _failure(args, lines.code, lines)
    return lines


def _stream(
    repo: Path,
    args: tuple[str, ...],
    env: dict[str, str],
    on_line: Callable[[str], None] | None,
    record: Path | None,
) -> Output:
    """Run `dvc *args` in a session of its own, each line to `on_line`; stopped with its stage
    if the caller is interrupted."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dvc", *args],
        cwd=repo,
        env=dvc_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,  # its own group: stopped with its stage below
    )
    lines = Output()
    assert proc.stdout is not None
    try:
        # Inside the `try`: a failure (or a signal) while recording still stops DVC.
        if record is not None:
            record_group(record, env[ENV_GROUP_TOKEN], proc.pid)
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            if on_line is not None and line.strip():
                on_line(line)
        lines.code = proc.wait()
    except BaseException:
        # Interrupted (a cancelled flow run's SIGTERM, Ctrl-C): DVC and the stage it runs stop
        # before the caller restores the workspace, or the stage would write over it.
        _stop(proc)
        _forget(record)
        raise
    _forget(record)
    return lines


def _forget(record: Path | None) -> None:
    """DVC has ended, or was stopped: nothing is left for a later process to stop. (Not in a
    `finally`: a stop cut short by a second signal keeps the record.)"""
    if record is not None:
        record.unlink(missing_ok=True)


def _stop(proc: subprocess.Popen[str], grace: float = 10.0) -> None:
    """Stop `proc`'s process group (DVC and the stage it runs): SIGTERM, then SIGKILL for what
    is left after `grace` (the tune stage stops its workers on SIGTERM)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        deadline = time.monotonic() + wait
        try:
            os.killpg(proc.pid, sig)
            while time.monotonic() < deadline:
                proc.poll()  # reap the leader: a zombie still counts as the group's
                os.killpg(proc.pid, 0)
                time.sleep(0.1)
        except ProcessLookupError:
            break  # the whole group is gone
    proc.poll()
    if proc.stdout is not None:
        proc.stdout.close()


def succeeds(repo: Path, *args: str) -> bool:
    """Run `dvc *args` quietly; whether it exited 0."""
    try:
        run(repo, *args)
    except DvcError:
        return False
    return True


def json_output(repo: Path, *args: str) -> Any:
    """Run `dvc <args> --json` in `repo` and parse what it prints on stdout."""
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args, "--json"],
        cwd=repo,
        env=dvc_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise _failure(args, proc.returncode, (proc.stderr + proc.stdout).splitlines(), keep=3)
    text = proc.stdout.strip()
    return json.loads(text) if text else {}


def stage_started(line: str) -> str | None:
    """The stage a line of `dvc repro` output starts, or None."""
    found = RUNNING_STAGE.search(line)
    return found.group(1) if found else None


def stages_run(output: str | Iterable[str]) -> list[str]:
    """The stages `dvc repro` ran, in the order it ran them (each once).

    Args:
        output: its whole output, or its lines.
    """
    lines = output.splitlines() if isinstance(output, str) else output
    ran: list[str] = []
    for line in lines:
        stage = stage_started(line)
        if stage is not None and stage not in ran:
            ran.append(stage)
    return ran


def stage_ran(lines: Iterable[str], stage: str) -> bool:
    return stage in stages_run(lines)


def stage_order(repo: Path) -> list[str]:
    """The pipeline's stages in dependency order, from DVC's graph of dvc.yaml.

    Each stage comes after every stage whose outputs it depends on, whatever order dvc.yaml
    lists them in (ties keep the file's order). `.dvc` files (data pins) are not stages.
    """
    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    with Repo(str(repo)) as dvc_repo:
        graph = dvc_repo.index.graph
        stages = [s for s in dvc_repo.index.stages if isinstance(s, PipelineStage)]
        listed = [s.name for s in stages]
        # networkx: an edge a -> b means a depends on b.
        needs = {s.name: {d.name for d in graph.successors(s) if d in stages} for s in stages}
    order: list[str] = []
    while len(order) < len(listed):
        ready = [n for n in listed if n not in order and needs[n] <= set(order)]
        if not ready:
            raise DvcError(f"{repo / PIPELINE_FILE}: the stages' dependencies form a cycle")
        order.append(ready[0])
    return order


def default_remote(repo: Path) -> tuple[str, str] | None:
    """(name, URL) of the repository's default DVC remote, or None; a local path comes back
    absolute."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        name = dvc_repo.config["core"].get("remote")
        if not name:
            return None
        return str(name), str(dvc_repo.config["remote"][name]["url"])


def set_remote_url(repo: Path, name: str, url: str) -> None:
    """Point the remote `name` at `url` in this checkout only (`.dvc/config.local`)."""
    run(repo, "remote", "modify", "--local", name, "url", url)


# --- pins: .dvc files and dvc.lock -------------------------------------------------------


@dataclass(frozen=True)
class Pin:
    """The hash and path that a .dvc file pins."""

    dvc_file: Path
    path: Path
    md5: str


def pinned_md5(dvc_text: str | None) -> str | None:
    """The hash a .dvc file's one output pins (a `.dir` hash for a folder), or None."""
    if not dvc_text:
        return None
    try:
        return str(yaml.safe_load(dvc_text)["outs"][0]["md5"])
    except (yaml.YAMLError, KeyError, IndexError, TypeError):
        return None


def read_pin(dvc_file: Path) -> Pin:
    """The output a .dvc file pins.

    Raises:
        DataError: the file is missing or pins no single output with a hash.
    """
    try:
        text = dvc_file.read_text()
        out = yaml.safe_load(text)["outs"][0]
        md5 = pinned_md5(text)
    except (FileNotFoundError, KeyError, IndexError, TypeError, yaml.YAMLError):
        md5 = None
    if md5 is None:
        raise DataError(f"{dvc_file}: missing or not a DVC file with one output")
    return Pin(dvc_file, dvc_file.parent / out["path"], md5)


def lock_outputs(lock_text: str) -> dict[str, str]:
    """Every output path in a dvc.lock text -> its md5 (a `.dir` hash for a folder)."""
    lock = yaml.safe_load(lock_text) or {}
    outs: dict[str, str] = {}
    for stage in (lock.get("stages") or {}).values():
        for out in stage.get("outs", []):
            outs[str(out["path"])] = str(out["md5"])
    return outs


# --- the cache and the remote ---------------------------------------------------------------


def cached_file(repo: Path, md5: str) -> Path | None:
    """The file the local DVC cache holds for `md5`, or None.

    DVC 3 keeps files content-addressed under files/md5/<2>/<30>; the cache folder may be
    configured elsewhere, so DVC says where.
    """
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        path = Path(dvc_repo.cache.local.oid_to_path(md5))
    return path if path.is_file() else None


def in_cache(repo: Path, md5: str) -> bool:
    """Whether the local cache holds `md5` (a `.dir` hash too)."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        return bool(dvc_repo.cache.local.exists(md5))


def workspace_hash(repo: Path, path: Path) -> str | None:
    """DVC's own hash of `path` as it is on disk (what `dvc add` would pin), or None."""
    if not path.exists():
        return None
    from dvc.repo import Repo
    from dvc_data.hashfile.build import build

    with Repo(str(repo)) as dvc_repo:
        _, _, obj = build(
            dvc_repo.cache.local,
            str(path),
            dvc_repo.fs,
            "md5",
            dry_run=True,
            ignore=dvc_repo.dvcignore,
        )
    return str(obj.hash_info.value)


def commit_and_push(
    repo: Path,
    pins: Iterable[Path],
    *,
    everything: bool = False,
    on_line: Callable[[str], None] | None = None,
    lock_tries: int = 1,
) -> list[str]:
    """Commit the data the `pins` (.dvc files) point at to the cache, then push it (or,
    with `everything`, every output of the repository: data and models).

    A push that leaves anything behind fails: what is pinned must be pullable.

    Returns:
        The push's output lines.

    Raises:
        DvcError: either command failed, or the push found outputs missing from the cache.
    """
    rels = [str(p.relative_to(repo)) if p.is_absolute() else str(p) for p in pins]
    run(repo, "commit", "-f", "-q", *rels, on_line=on_line, lock_tries=lock_tries)
    targets = [] if everything else rels
    lines = run(repo, "push", *targets, on_line=on_line, lock_tries=lock_tries)
    if any("cache files do not exist" in line for line in lines):
        raise DvcError("dvc push left outputs behind (missing from the cache)")
    return lines


def tracked_outs(repo: Path) -> list[Path]:
    """Every path DVC tracks in `repo` (dvc.yaml stage outs and `.dvc` file outs), absolute;
    none when `repo` is not a DVC project."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        with Repo(str(repo)) as dvc_repo:
            return [Path(str(out.fs_path)) for out in dvc_repo.index.outs]
    except NotDvcRepoError:
        return []


# --- a failed run: put dvc.lock and the stage outputs back --------------------------------


@dataclass(frozen=True)
class PipelineState:
    """dvc.lock's text and copies of the outputs DVC does not cache, as a run found them."""

    lock_text: str | None
    copies: dict[Path, Path | None]  # uncached out -> its copy (None: it did not exist)


def save_pipeline_state(repo: Path, into: Path) -> PipelineState:
    """Keep what a failing `dvc repro` may change: dvc.lock, and a copy of each stage output
    kept out of the cache (`cache: false` metrics and summaries: `dvc checkout` cannot bring
    them back). Cached outputs need no copy: the cache holds what dvc.lock pins."""
    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    lock = repo / LOCK_FILE
    copies: dict[Path, Path | None] = {}
    with Repo(str(repo)) as dvc_repo:
        uncached = [
            Path(str(out.fs_path))
            for stage in dvc_repo.index.stages
            if isinstance(stage, PipelineStage)
            for out in stage.outs
            if not out.use_cache
        ]
    for i, path in enumerate(uncached):
        copy = into / f"{i}-{path.name}"
        copies[path] = _copy(path, copy) if path.exists() else None
    return PipelineState(lock.read_text() if lock.exists() else None, copies)


def restore_pipeline_state(repo: Path, state: PipelineState) -> None:
    """Put dvc.lock and every stage output back as `save_pipeline_state` found them: the
    uncached ones from their copies, the cached ones from the cache (`dvc checkout`).

    Raises:
        DvcError: the checkout failed (an output dvc.lock pins is not in the cache).
    """
    lock = repo / LOCK_FILE
    if state.lock_text is None:
        lock.unlink(missing_ok=True)
    else:
        lock.write_text(state.lock_text)
    for path, copy in state.copies.items():
        _remove(path)
        if copy is not None:
            _copy(copy, path)
    if state.lock_text is not None:
        run(repo, "checkout", "--force", "--quiet", PIPELINE_FILE)


def _copy(src: Path, dest: Path) -> Path:
    import shutil

    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dest)
    else:
        shutil.copy2(src, dest)
    return dest


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def new_since_lock(repo: Path, lock_text: str | None, folder: Path) -> list[Path]:
    """Files of the tracked `folder` that dvc.lock's record of it (a stage's dep, a `.dir`
    manifest in the cache) does not list: the batches a run reads for the first time."""
    if not folder.is_dir():
        return []
    rel = folder.resolve().relative_to(repo.resolve()).as_posix()
    lock = yaml.safe_load(lock_text or "") or {}
    md5s = [
        str(dep["md5"])
        for stage in (lock.get("stages") or {}).values()
        for dep in stage.get("deps", [])
        if str(dep.get("path")) == rel and str(dep.get("md5", "")).endswith(".dir")
    ]
    manifest = cached_file(repo, md5s[0]) if md5s else None
    if manifest is None:
        return []
    known = {str(entry["relpath"]) for entry in json.loads(manifest.read_text())}
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return [p for p in files if p.relative_to(folder).as_posix() not in known]
