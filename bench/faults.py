"""Fault table (issue 12): inject each fault into a scratch git + DVC repo, then account for
every landed row: stored as a batch, or kept in quarantine, and in the DVC remote either way.

    .venv/bin/python -m bench.faults            # every fault
    .venv/bin/python -m bench.faults --quick    # the cheap ones (the smoke test runs these)
    .venv/bin/python -m bench.faults --only kill_mid_tune --only kill_mid_train

Each fault is a function in FAULTS (name, function, cheap): it lands batches, breaks
something, lets ingest run (and run again, as the next scheduled run would), and returns what
happened. "lost" counts landed rows whose bytes are not in the DVC remote at the end, stored or
quarantined: it must be 0. The retrain faults (kill mid-tune, mid-train, an ingest during a
retrain) run the real retrain flow in a subprocess against a temporary Prefect server, on the
tests' small params and a small table; for them "kept" counts the rows the next successful
record pins (its data.dvc, which must equal its dvc.lock's data) and "lost" the rows in
that are not pinned.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bench.common import (
    REPO,
    Goal,
    Section,
    Shared,
    bench_env,
    cli,
    make_repo,
    pipeline_params,
    telco_raw,
)
from retrain.infra import dvc, git


@dataclass
class Landed:
    """One thing a producer landed: its table's bytes (unpacked) and the bytes as landed."""

    name: str
    table: bytes
    raw: bytes
    rows: int


@dataclass
class Outcome:
    fault: str
    happened: str
    landed: list[Landed] = field(default_factory=list)
    kept: int = 0
    quarantined: int = 0
    lost: int = 0

    @property
    def rows_in(self) -> int:
        return sum(x.rows for x in self.landed)


Fault = Callable[[Path], Outcome]


# --- a scratch repo and a producer -----------------------------------------------------------


def _repo(workdir: Path, name: str) -> Path:
    repo = make_repo(workdir / name, pipeline_params())
    (repo / "data" / "landing").mkdir(parents=True, exist_ok=True)
    return repo


def _batches(n: int, seed: int, size: int = 200) -> list[pd.DataFrame]:
    from retrain.config import DatasetSchema
    from retrain.data.simulate import simulate

    schema = DatasetSchema(**pipeline_params()["dataset"])
    return simulate(pd.read_csv(telco_raw()), schema, n_batches=n, batch_size=size, seed=seed)


def _land(repo: Path, name: str, df: pd.DataFrame, *, gz: bool = False, cut: int = 0) -> Landed:
    """Write a batch by the landing protocol (file, then NAME.done)."""
    table = df.to_csv(index=False).encode()
    if cut:
        table = table[:-cut]
    raw = gzip.compress(table) if gz else table
    path = repo / "data" / "landing" / name
    path.write_bytes(raw)
    path.with_name(name + ".done").touch()
    return Landed(name, table, raw, len(df))


def _remote(repo: Path) -> Path:
    return repo.parent / "remote"


def _set_remote(repo: Path, url: str) -> None:
    dvc.set_remote_url(repo, "local", url)


def _ingest(repo: Path) -> str:
    """One ingest, as `retrain ingest` runs it (in this process: no start-up cost)."""
    from retrain.config import load_params_at
    from retrain.ingest import ingest_landing

    run = ingest_landing(load_params_at(repo))
    said = ", ".join(f"{Path(r.source).name} {r.status}" for r in run.results) or "no file"
    if run.versioned is None:
        return f"{said}, nothing to push"
    if run.versioned:
        return f"{said}, pushed" + (" (with the earlier run's)" if run.retried else "")
    return f"{said}, NOT pushed ({run.version_error})"


def _cli(repo: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "retrain.cli", "ingest"],
        cwd=repo,
        env=bench_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _in_remote(remote: Path, data: bytes) -> bool:
    md5 = hashlib.md5(data).hexdigest()
    return (remote / "files" / "md5" / md5[:2] / md5[2:]).exists()


def _account(repo: Path, out: Outcome) -> Outcome:
    """Where each landed table is now: stored, quarantined, and whether the remote has it."""
    data = repo / "data"
    stored = {
        hashlib.md5(p.read_bytes()).hexdigest() for p in (data / "raw").rglob("*") if p.is_file()
    }
    kept_q = {
        hashlib.md5(p.read_bytes()).hexdigest()
        for p in (data / "quarantine").rglob("*")
        if p.is_file() and p.name not in ("reason.txt", "report.json")
    }
    remote = _remote(repo)
    for x in out.landed:
        if hashlib.md5(x.table).hexdigest() in stored and _in_remote(remote, x.table):
            out.kept += x.rows
        elif hashlib.md5(x.raw).hexdigest() in kept_q and _in_remote(remote, x.raw):
            out.quarantined += x.rows
        else:
            out.lost += x.rows
    return out


# --- the faults ------------------------------------------------------------------------------

_SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    path, data = sys.argv[1], open(sys.argv[2], "rb").read().splitlines(True)
    with open(path, "wb") as fh:
        for i, line in enumerate(data):
            fh.write(line)
            if i % 10 == 0:
                fh.flush()
                time.sleep(0.05)
    open(path + ".done", "w").close()
    """
)


def partial_file(workdir: Path) -> Outcome:
    repo = _repo(workdir, "partial")
    slow, cut = _batches(2, seed=31)
    src = workdir / "slow-source.csv"
    slow.to_csv(src, index=False)
    landed = repo / "data" / "landing" / "slow.csv"
    writer = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(landed), str(src)])
    while not landed.exists():
        time.sleep(0.01)
    during = _ingest(repo)
    writer.wait(timeout=120)
    truncated = _land(repo, "cut.csv", cut, cut=30)
    after = _ingest(repo)
    whole = Landed("slow.csv", src.read_bytes(), src.read_bytes(), len(slow))
    out = Outcome(
        "partial file (still written; truncated last line)",
        f"while written: {during}; complete: {after}",
        [whole, truncated],
    )
    return _account(repo, out)


def dangling_link(workdir: Path) -> Outcome:
    repo = _repo(workdir, "link")
    (good,) = _batches(1, seed=32)
    landed = [_land(repo, "b-good.csv", good)]
    (repo / "data" / "landing" / "a-link.csv").symlink_to(workdir / "gone.csv")
    outside = workdir / "outside.csv"
    good.head(5).to_csv(outside, index=False)
    (repo / "data" / "landing" / "c-outside.csv").symlink_to(outside)
    return _account(repo, Outcome("dangling link, link outside", _ingest(repo), landed))


def duplicate(workdir: Path) -> Outcome:
    repo = _repo(workdir, "dup")
    (batch,) = _batches(1, seed=33)
    landed = [_land(repo, "a.csv", batch)]
    first = _ingest(repo)
    landed += [_land(repo, "a-resent.csv", batch), _land(repo, "a.csv.gz", batch, gz=True)]
    again = _ingest(repo)
    out = Outcome("duplicate (same bytes, renamed, gzipped)", f"{first}; then {again}", landed)
    return _account(repo, out)


def remote_down(workdir: Path) -> Outcome:
    repo = _repo(workdir, "remote")
    good, bad = _batches(2, seed=34)
    landed = [
        _land(repo, "a-good.csv", good),
        _land(repo, "b-bad.csv", bad.drop(columns="tenure")),
    ]
    _set_remote(repo, "/proc/no-such-remote")
    down = _ingest(repo)
    _set_remote(repo, str(_remote(repo)))
    up = _ingest(repo)
    return _account(repo, Outcome("remote down during push", f"{down}; remote back: {up}", landed))


def kill_mid_ingest(workdir: Path) -> Outcome:
    repo = _repo(workdir, "kill")
    frames = _batches(4, seed=35)
    frames[2] = frames[2].drop(columns="tenure")
    landed = [_land(repo, f"b{i}.csv", df) for i, df in enumerate(frames)]
    proc = _cli(repo)
    placed = [repo / "data" / "raw" / "batches", repo / "data" / "quarantine"]
    while proc.poll() is None and not any(p.exists() and any(p.iterdir()) for p in placed):
        time.sleep(0.005)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n = sum(len(list(p.iterdir())) for p in placed if p.exists())
    when = f"SIGKILL after {n} of 4 placed" if killed else "finished before the kill"
    return _account(repo, Outcome("kill -9 mid-ingest", f"{when}; rerun: {_ingest(repo)}", landed))


def concurrent_ingest(workdir: Path) -> Outcome:
    repo = _repo(workdir, "concurrent")
    landed = [_land(repo, f"b{i}.csv", df) for i, df in enumerate(_batches(4, seed=36))]
    procs = [_cli(repo), _cli(repo)]
    outs = [p.communicate()[0].strip().splitlines()[-1:] for p in procs]
    codes = [p.returncode for p in procs]
    said = " | ".join(f"exit {c}: {o[0] if o else ''}" for c, o in zip(codes, outs, strict=True))
    out = Outcome("two ingests at once", f"{said}; next run: {_ingest(repo)}", landed)
    return _account(repo, out)


# --- faults of a retrain ---------------------------------------------------------------------

RETRAIN = f"{REPO}/flows/retraining.py:retraining_flow"
ONNX = "models/model/model.onnx"
_RETRAIN_ROWS = 2000  # a small table: each retrain costs seconds on the small params

# One retrain in its own process (and process group), as a deployment would run it.
_KILLABLE = textwrap.dedent(
    """
    import json, sys
    from prefect.flows import load_flow_from_entrypoint
    flow = load_flow_from_entrypoint(sys.argv[1])
    result = flow(repo=sys.argv[2], reason="manual", overrides=json.loads(sys.argv[3]))
    print("RESULT " + json.dumps(result, default=str), flush=True)
    """
)

_STATE: dict[str, Any] = {}  # the Prefect server and trained base repo the retrain faults share


def _prefect_env() -> dict[str, str]:
    """The environment of a retrain subprocess: the temporary Prefect server, started once."""
    if "stack" not in _STATE:
        from prefect.testing.utilities import prefect_test_harness

        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        stack = contextlib.ExitStack()
        stack.enter_context(prefect_test_harness(server_startup_timeout=120))
        _STATE["stack"] = stack
    from prefect.settings import PREFECT_API_URL

    return {**bench_env(), "PREFECT_API_URL": str(PREFECT_API_URL.value())}


def _close_prefect() -> None:
    stack = _STATE.pop("stack", None)
    if stack is not None:
        stack.close()


def _dvc(repo: Path, *args: str) -> str:
    return "\n".join(dvc.run(repo, *args))


def _git(repo: Path, *args: str) -> str:
    ident = ("-c", "user.name=bench", "-c", "user.email=bench@retrain.local")
    return git.git(repo, *ident, *args).strip()


def _trained(workdir: Path) -> Path:
    """A copy of one trained repo (small params, small table, data pinned and committed)."""
    from retrain.testing import copy_repo, small_overrides

    if "base" not in _STATE:
        base = make_repo(
            workdir.parent / "retrain-base",
            small_overrides(pipeline_params()),
            n_rows=_RETRAIN_ROWS,
        )
        _dvc(base, "commit", "-f", "-q", "data.dvc")  # pin the small table
        # The checkout's pin of the Telco table (a test fixture) names data this small table
        # does not hold: every `dvc push` of the flow would report it missing.
        (base / "tests" / "fixtures" / "telco_churn.dvc").unlink(missing_ok=True)
        (base / "data" / "landing").mkdir(parents=True, exist_ok=True)
        _dvc(base, "repro")
        _git(base, "add", "-A")
        _git(base, "commit", "-qm", "trained")
        _STATE["base"] = base
    return copy_repo(_STATE["base"], workdir / "repo")


def _rows_pinned(repo: Path, md5: str) -> int:
    """Rows of the CSV tables in a pinned directory (DVC's .dir manifest, from the cache)."""

    def obj(h: str) -> Path:
        found = dvc.cached_file(repo, h)
        if found is None:
            raise RuntimeError(f"{h} is not in the DVC cache of {repo}")
        return found

    rows = 0
    for entry in json.loads(obj(md5).read_text()):
        rel = str(entry["relpath"]).lower()
        if rel.endswith((".csv", ".csv.gz")):
            gz = "gzip" if rel.endswith(".gz") else None
            rows += len(pd.read_csv(obj(str(entry["md5"])), compression=gz))
    return rows


def _pin_md5(dvc_text: str) -> str:
    """The md5 of data/raw in a .dvc file (its outs) or in dvc.lock (validate's deps)."""
    doc = yaml.safe_load(dvc_text)
    entries = doc["stages"]["validate"]["deps"] if "stages" in doc else doc["outs"]
    return next(str(e["md5"]) for e in entries if e["path"] == "data/raw")


def _start_retrain(repo: Path, overrides: dict[str, Any] | None) -> tuple[Any, queue.Queue[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLABLE, RETRAIN, str(repo), json.dumps(overrides)],
        env={**_prefect_env(), "PREFECT_HOME": str(repo.parent / "prefect-home")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: DVC and the stage die with it
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put("")  # end of output

    threading.Thread(target=read, daemon=True).start()
    return proc, lines


def _until(lines: queue.Queue[str], stage: str | None, timeout: float, seen: list[str]) -> bool:
    """Read the flow's lines until DVC starts `stage` (None: until the end or the timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line == "":
            return False
        seen.append(line)
        if stage is not None and dvc.stage_started(line) == stage:
            return True
    return False


def _result(proc: Any, lines: queue.Queue[str], seen: list[str], timeout: float) -> Any:
    """The flow's result dict, once the subprocess ends."""
    _until(lines, None, timeout, seen)
    proc.wait(timeout=60)
    out = "".join(seen)
    if proc.returncode != 0 or "RESULT " not in out:
        log = Path(os.environ.get("RETRAIN_FAULTS_LOG", "/tmp/retrain-faults-failed.log"))
        log.write_text(out)
        raise RuntimeError(f"retrain failed (exit {proc.returncode}), its log in {log}")
    return json.loads(out.split("RESULT ", 1)[1].splitlines()[0]), out


def _pinned_by_record(repo: Path, run_id: str) -> tuple[int, bool, dict[str, Any]]:
    """Rows the record of `run_id` pins, whether its data.dvc equals its dvc.lock's data."""
    tag = f"run/{run_id}"
    rec = json.loads(_git(repo, "show", f"{tag}:registry/run.json"))
    pinned = _pin_md5(_git(repo, "show", f"{tag}:data.dvc"))
    same = pinned == _pin_md5(_git(repo, "show", f"{tag}:dvc.lock")) == rec["data"]["md5"]
    return _rows_pinned(repo, pinned), same, rec


def _kill_retrain_at(workdir: Path, stage: str, overrides: dict[str, Any], name: str) -> Outcome:
    repo = _trained(workdir)
    before = _pin_md5((repo / "data.dvc").read_text())
    rows_in = _rows_pinned(repo, before)
    committed = (repo / "params.yaml").read_text()
    model = yaml.safe_load((repo / "dvc.lock").read_text())
    onnx_before = next(
        o["md5"] for s in model["stages"].values() for o in s.get("outs", []) if o["path"] == ONNX
    )
    proc, lines = _start_retrain(repo, overrides)
    seen: list[str] = []
    try:
        if not _until(lines, stage, 600, seen):
            raise RuntimeError(f"no stage {stage} started:\n{''.join(seen[-40:])}")
        time.sleep(2)  # well inside the stage
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    leaked = (repo / "params.yaml").read_text() != committed
    when = f"SIGKILL at {stage}" if killed else f"finished before the kill at {stage}"
    plain, plain_lines = _start_retrain(repo, None)
    result, out = _result(plain, plain_lines, [], 900)
    rows, same, rec = _pinned_by_record(repo, result["run_id"])
    restored = "restored params.yaml" in out
    clean = (repo / "params.yaml").read_text() == committed
    same_model = rec["artifacts"].get(ONNX) == onnx_before
    happened = (
        f"{when} (overrides {'left in' if leaked else 'not in'} params.yaml); next plain run "
        f"{'restored params.yaml' if restored else 'found params.yaml as committed'}"
        f"{'' if clean else ' BUT params.yaml differs after it'}, recorded overrides "
        f"{rec['overrides']}; model {'=' if same_model else 'DIFFERS from'} committed params' "
        f"model; record's data.dvc {'=' if same else '!='} its dvc.lock data"
    )
    out_ = Outcome(name, happened, [Landed("data/raw as pinned before", b"", b"", rows_in)])
    out_.kept = rows if same else 0
    out_.lost = rows_in - out_.kept
    return out_


def kill_mid_tune(workdir: Path) -> Outcome:
    slow = {"tune.n_trials": 40}  # tune reruns, long enough to be killed in the middle
    return _kill_retrain_at(workdir, "tune", slow, "kill -9 mid-tune (retrain with overrides)")


def kill_mid_train(workdir: Path) -> Outcome:
    slow = {"train.max_epochs": 300, "train.patience": 300}  # only train and what follows rerun
    return _kill_retrain_at(workdir, "train", slow, "kill -9 mid-train (retrain with overrides)")


def concurrent_ingest_retrain(workdir: Path) -> Outcome:
    """A batch lands and is ingested while a retrain trains: the ingest waits for the lock."""
    repo = _trained(workdir)
    rows_before = _rows_pinned(repo, _pin_md5((repo / "data.dvc").read_text()))
    (late,) = _batches(1, seed=37, size=300)
    proc, lines = _start_retrain(repo, {"train.max_epochs": 30, "train.patience": 30})
    seen: list[str] = []
    try:
        if not _until(lines, "train", 600, seen):
            raise RuntimeError(f"no stage train started:\n{''.join(seen[-40:])}")
        landed = [_land(repo, "late.csv", late)]
        ingest = _cli(repo)
        said = ingest.communicate(timeout=900)[0]
        result, _ = _result(proc, lines, seen, 900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    waited = any("waiting for the project lock" in ln for ln in said.splitlines())
    rows, same, rec = _pinned_by_record(repo, result["run_id"])
    after = _rows_pinned(repo, _pin_md5((repo / "data.dvc").read_text()))
    happened = (
        f"ingest {'waited for' if waited else 'did NOT wait for'} the retrain's lock, exit "
        f"{ingest.returncode}; retrain's record pins {rows} rows "
        f"(data.dvc {'=' if same else '!='} its dvc.lock data, batches {rec['data']['batches']}); "
        f"the batch is pinned after it ({after} rows)"
    )
    out = Outcome(
        "ingest during a retrain",
        happened,
        [Landed("data/raw as pinned before", b"", b"", rows_before), *landed],
    )
    # Kept: the record pins exactly what its pipeline read (the rows before), and the batch
    # is pinned after it (the next retrain reads it).
    ok = same and rows == rows_before
    out.kept = after if ok else 0
    out.lost = out.rows_in - out.kept
    return out


# (name, function, cheap): the cheap ones run with --quick and in the smoke test.
FAULTS: list[tuple[str, Fault, bool]] = [
    ("partial_file", partial_file, True),
    ("dangling_link", dangling_link, True),
    ("duplicate", duplicate, True),
    ("remote_down", remote_down, True),
    ("kill_mid_ingest", kill_mid_ingest, False),
    ("concurrent_ingest", concurrent_ingest, False),
    ("kill_mid_train", kill_mid_train, False),
    ("concurrent_ingest_retrain", concurrent_ingest_retrain, False),
    ("kill_mid_tune", kill_mid_tune, False),
]


def run(quick: bool, shared: Shared) -> Section:
    workdir = shared["workdir"] / "faults"
    workdir.mkdir(parents=True, exist_ok=True)
    section = Section(
        "F",
        "Faults: every landed row stored or quarantined, and in the DVC remote",
        ["fault", "what happened", "rows in", "kept", "quarantined", "lost"],
    )
    outcomes = []
    chosen = [f for f in FAULTS if (not ONLY or f[0] in ONLY) and (f[2] or not quick)]
    try:
        for name, fault, _cheap in chosen:
            print(f"  fault {name} ...", flush=True)
            try:
                outcomes.append((name, fault(workdir / name)))
            except Exception as exc:  # one broken fault must not hide the others' rows
                failed = Outcome(name, f"FAILED: {exc}", [Landed("?", b"", b"", 0)])
                failed.lost = -1
                outcomes.append((name, failed))
    finally:
        _close_prefect()
    for name, out in outcomes:
        section.rows.append(
            [
                out.fault,
                out.happened,
                str(out.rows_in),
                str(out.kept),
                str(out.quarantined),
                "?" if out.lost < 0 else f"**{out.lost}**" if out.lost else "0",
            ]
        )
        section.data[name] = {
            "happened": out.happened,
            "rows_in": out.rows_in,
            "kept": out.kept,
            "quarantined": out.quarantined,
            "lost": out.lost,
        }
    lost = sum(abs(o.lost) for _, o in outcomes)  # a failed fault (-1) fails the goal
    section.goals.append(
        Goal(
            "rows lost under injected faults",
            f"{lost} of {sum(o.rows_in for _, o in outcomes)}",
            "0",
            lost == 0,
        )
    )
    if quick:
        section.notes.append("--quick: kills (ingest, tune, train) and concurrent runs not run")
    if ONLY:
        section.notes.append(f"--only: {', '.join(sorted(ONLY))}")
    return section


ONLY: set[str] = set()  # --only NAME (repeatable): run just these faults


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--only", action="append", default=[], choices=[f[0] for f in FAULTS])
    known, rest = parser.parse_known_args()
    ONLY.update(known.only)
    sys.argv = [sys.argv[0], *rest]
    cli(run, __doc__)


if __name__ == "__main__":
    main()
