"""Fault corpus (issues 12 and 25): each case makes one fault in a scratch git + DVC repo of
its own (built once from this checkout, copied per case, with its own empty DVC remote), and
checks what must hold: for a batch, that the next retrain succeeds and that every row is
accounted for (rows in = rows trained on + rows held out for the pinned evaluation set + rows
quarantined + rows dropped by prepare's documented duplicate rule); for a command or endpoint,
one clear line and a non-zero exit.

    python -m bench.faults            # every case; writes the table into bench/RESULTS.md
    python -m bench.faults --quick    # the fast cases (tests/integration/test_faults.py runs them)
    python -m bench.faults --only fifo --only id_email

CASES is the table (name, how the fault is made, what must hold, the function, fast or
not). For the ingest faults of issue 12,
"lost" counts landed rows whose bytes are not in the DVC remote at the end, stored or
quarantined. The retrain faults (kill mid-tune, mid-train, an ingest during a retrain) run
the real retrain flow in a subprocess against a temporary Prefect server, on the tests' small
params and a small table; for them "kept" counts the rows the next successful record pins
(its data.dvc, which must equal its dvc.lock's data) and "lost" the rows in that are not.
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
import zlib
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
from retrain.data.arrivals import ARRIVALS
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
    dropped: int = 0  # by a documented, logged rule (prepare's duplicates, metrics/prepare.json)
    problems: list[str] = field(default_factory=list)  # what did not hold; empty: it held

    @property
    def rows_in(self) -> int:
        return sum(x.rows for x in self.landed)


Fault = Callable[[Path], Outcome]


# --- a scratch repo and a producer -----------------------------------------------------------


def _repo(workdir: Path, name: str) -> Path:
    """A scratch git + DVC repo of its own, with its own empty remote (workdir/name/remote).

    Built once from this checkout (make_repo) and copied per case. Every `.dvc` pin but the
    data pin is removed: a pin the checkout holds (data/quarantine.dvc after an ingest there)
    names data the scratch remote never had, and every `dvc push` would fail on it.
    """
    from retrain.testing import copy_repo

    if "scratch" not in _STATE:
        base = make_repo(workdir.parent.parent / "scratch-base", pipeline_params())
        pin = pipeline_params()["paths"]["data_pin"]
        for stray in base.rglob("*.dvc"):
            keep = stray.relative_to(base).as_posix() == pin or ".dvc" in stray.parent.parts
            if stray.is_file() and not keep:
                stray.unlink()
        (base / "data" / "landing").mkdir(parents=True, exist_ok=True)
        _git(base, "add", "-A")
        _git(base, "commit", "-qm", "scratch: only the data pin", "--allow-empty")
        _STATE["scratch"] = base
    repo = copy_repo(_STATE["scratch"], workdir / name / "repo")
    _set_remote(repo, str(_remote(repo)))
    return repo


def _batches(n: int, seed: int, size: int = 200) -> list[pd.DataFrame]:
    from retrain.config import DatasetSchema
    from retrain.data.simulate import simulate

    schema = DatasetSchema(**pipeline_params()["dataset"])
    schema = schema.model_copy(update={"suite": REPO / schema.suite})  # rows pass the suite
    return simulate(pd.read_csv(telco_raw()), schema, n_batches=n, batch_size=size, seed=seed)


def _pooled(i: int) -> pd.DataFrame:
    """Batch `i` of one seeded simulation shared by the issue-25 cases (one label model fit
    instead of one per case); ids distinct from every other batch's."""
    if "pool" not in _STATE:
        _STATE["pool"] = _batches(16, seed=25)
    return _STATE["pool"][i].copy()


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


def _stored_parts(repo: Path, table: bytes) -> list[bytes]:
    """What ingest stores of an accepted table: the table, or where it holds a share out for
    the pinned evaluation set (ingest.holdout_share, retrain.ingest.holdout) its rows that
    train and its held-out rows, split by the same function."""
    import tempfile

    from retrain.config import load_params_at
    from retrain.ingest.holdout import split_batch

    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "table.csv"
        staged.write_bytes(table)
        split = split_batch(staged, load_params_at(repo), Path(tmp) / "split")
        if split is None:
            return [table]
        return [split.train.read_bytes(), split.holdout.read_bytes()]


def _account(repo: Path, out: Outcome) -> Outcome:
    """Where each landed table is now: stored (its rows that train in the raw data, a share
    held out in the pinned holdout), quarantined, and whether the remote has it."""
    data = repo / "data"
    holdout = repo / pipeline_params()["paths"]["holdout"]
    stored = {
        hashlib.md5(p.read_bytes()).hexdigest()
        for folder in (data / "raw", holdout)
        for p in folder.rglob("*")
        if p.is_file()
    }
    kept_q = {
        hashlib.md5(p.read_bytes()).hexdigest()
        for p in (data / "quarantine").rglob("*")
        if p.is_file() and p.name not in ("reason.txt", "report.json")
    }
    remote = _remote(repo)
    for x in out.landed:
        parts = _stored_parts(repo, x.table)
        if all(hashlib.md5(b).hexdigest() in stored and _in_remote(remote, b) for b in parts):
            out.kept += x.rows
        elif hashlib.md5(x.raw).hexdigest() in kept_q and _in_remote(remote, x.raw):
            out.quarantined += x.rows
        else:
            out.lost += x.rows
    return out


# --- the faults ------------------------------------------------------------------------------

# Half the file is written, then the writer waits for `go` (the ingest that must find it still
# being written has run): on a loaded machine a writer that only paused between lines could
# finish, marker and all, before that ingest looked (seen in `make test`: "slow.csv accepted").
_SLOW_WRITER = textwrap.dedent(
    """
    import os, sys, time
    path, data, go = sys.argv[1], open(sys.argv[2], "rb").read().splitlines(True), sys.argv[3]
    with open(path, "wb") as fh:
        for i, line in enumerate(data):
            fh.write(line)
            if i == len(data) // 2:
                fh.flush()
                deadline = time.monotonic() + 120
                while not os.path.exists(go) and time.monotonic() < deadline:
                    time.sleep(0.01)
    open(path + ".done", "w").close()
    """
)


def partial_file(workdir: Path) -> Outcome:
    repo = _repo(workdir, "partial")
    slow, cut = _pooled(6), _pooled(7)
    src = workdir / "slow-source.csv"
    slow.to_csv(src, index=False)
    landed = repo / "data" / "landing" / "slow.csv"
    go = workdir / "go"
    writer = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(landed), str(src), str(go)])
    while not landed.exists():
        time.sleep(0.01)
    during = _ingest(repo)
    go.touch()
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
    good = _pooled(8)
    landed = [_land(repo, "b-good.csv", good)]
    (repo / "data" / "landing" / "a-link.csv").symlink_to(workdir / "gone.csv")
    outside = workdir / "outside.csv"
    good.head(5).to_csv(outside, index=False)
    (repo / "data" / "landing" / "c-outside.csv").symlink_to(outside)
    return _account(repo, Outcome("dangling link, link outside", _ingest(repo), landed))


def duplicate(workdir: Path) -> Outcome:
    repo = _repo(workdir, "dup")
    batch = _pooled(9)
    landed = [_land(repo, "a.csv", batch)]
    first = _ingest(repo)
    landed += [_land(repo, "a-resent.csv", batch), _land(repo, "a.csv.gz", batch, gz=True)]
    again = _ingest(repo)
    out = Outcome("duplicate (same bytes, renamed, gzipped)", f"{first}; then {again}", landed)
    return _account(repo, out)


def remote_down(workdir: Path) -> Outcome:
    repo = _repo(workdir, "remote")
    good, bad = _pooled(10), _pooled(11)
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
    n = sum(1 for p in placed if p.exists() for f in p.iterdir() if f.name != ARRIVALS)
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
        # The checkout's pins but data.dvc (the Telco fixture's, data/quarantine.dvc) name data
        # this repo's remote does not hold: every `dvc push` of the flow would fail on them.
        for stray in base.rglob("*.dvc"):
            keep = stray == base / "data.dvc" or ".dvc" in stray.parent.parts
            if stray.is_file() and not keep:
                stray.unlink()
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


def _rows_held(repo: Path) -> int:
    """Rows of the pinned evaluation set (paths.holdout_pin), 0 when there is none."""
    pin = repo / pipeline_params()["paths"]["holdout_pin"]
    if not pin.exists():
        return 0
    return _rows_pinned(repo, str(yaml.safe_load(pin.read_text())["outs"][0]["md5"]))


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
    # The batch's rows that train (data.dvc) and its share held out (the holdout's own pin).
    after = _rows_pinned(repo, _pin_md5((repo / "data.dvc").read_text())) + _rows_held(repo)
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


# --- issue 25: what ingest accepts must not break, or quietly change, the next retrain ------


def _table(repo: Path) -> pd.DataFrame:
    return pd.read_csv(repo / "data" / "raw" / telco_raw().name)


def _next_retrain(repo: Path) -> tuple[str | None, dict[str, Any]]:
    """The next retrain's data stages, validate then prepare, in this process: the only stages
    that read batches (tune and train read prepare's outputs). Returns (None, prepare's
    summary), or (the one-line error, {})."""
    from retrain.config import load_params_at
    from retrain.data.io import read_file, table_files
    from retrain.errors import ValidationFailed
    from retrain.stages import prepare
    from retrain.validation.config_check import check_schema
    from retrain.validation.raw import validate_raw

    params = load_params_at(repo)
    try:
        # The validate stage's checks, less its Data Docs HTML (seconds of GE per call).
        frames = [(f, read_file(f)) for f in table_files(params.paths.raw_data)]
        check_schema(params.dataset, frames)
        for file, df in frames:
            result = validate_raw(df, params, str(file))
            if not result.success:
                raise ValidationFailed(result.headline())
        prepare.run(params)
    except Exception as err:  # any failure is the finding, in one line
        return " ".join(f"{type(err).__name__}: {err}".split())[:300], {}
    return None, json.loads(params.paths.prepare_summary.read_text())


def _retrain_outcome(repo: Path, name: str, said: str, landed: list[Landed]) -> Outcome:
    """Ingest has run: run the next retrain and account for every row. Rows in (the pinned
    table and every landed batch) = rows trained on (prepare's splits) + rows held out for the
    pinned evaluation set + rows quarantined + rows dropped by prepare's documented rule
    (duplicates, counted in metrics/prepare.json)."""
    table = Landed("the pinned table", b"", b"", len(_table(repo)))
    error, summary = _next_retrain(repo)
    out = _account(repo, Outcome(name, said, [table, *landed]))  # quarantined rows, by bytes
    out.kept = sum(summary.get("rows", {}).values()) + _rows_in_holdout(repo)
    out.dropped = int(summary.get("duplicate_rows", 0)) + int(summary.get("duplicate_ids", 0))
    out.lost = out.rows_in - out.kept - out.quarantined - out.dropped
    out.happened += "; next retrain " + ("succeeded" if error is None else f"FAILED: {error}")
    if error is not None:
        out.problems.append(f"the next retrain failed: {error}")
    if out.lost:
        out.problems.append(
            f"{out.lost} rows neither trained on, held out, quarantined nor dropped"
        )
    return out


def _rows_in_holdout(repo: Path) -> int:
    """Rows ingest held out for the pinned evaluation set (never trained on, by design)."""
    from retrain.config import load_params_at
    from retrain.data.io import read_file
    from retrain.ingest.holdout import holdout_files

    return sum(len(read_file(f)) for f in holdout_files(load_params_at(repo)))


def _land_bytes(repo: Path, name: str, table: bytes, rows: int) -> Landed:
    path = repo / "data" / "landing" / name
    path.write_bytes(table)
    path.with_name(name + ".done").touch()
    return Landed(name, table, table, rows)


def _batch_fault(workdir: Path, name: str, make: Callable[[pd.DataFrame], bytes]) -> Outcome:
    """Land one batch made by `make` from a simulated one, ingest it, run the next retrain."""
    repo = _repo(workdir, name)
    batch = _pooled(zlib.crc32(name.encode()) % 16)
    landed = [_land_bytes(repo, f"{name}.csv", make(batch), len(batch))]
    return _retrain_outcome(repo, name, _ingest(repo), landed)


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def column_order(workdir: Path) -> Outcome:
    return _batch_fault(workdir, "column_order", lambda b: _csv(b[list(b.columns)[::-1]]))


def id_email(workdir: Path) -> Outcome:
    def make(b: pd.DataFrame) -> bytes:
        return _csv(b.assign(customer_id=[f"c{i}@example.com" for i in range(len(b))]))

    return _batch_fault(workdir, "id_email", make)


def id_newline(workdir: Path) -> Outcome:
    def make(b: pd.DataFrame) -> bytes:
        b = b.astype({"customer_id": object})
        b.loc[b.index[3], "customer_id"] = "12\n34"  # written quoted: one row, two lines
        return _csv(b)

    return _batch_fault(workdir, "id_newline", make)


def id_collision(workdir: Path) -> Outcome:
    repo = _repo(workdir, "id_collision")
    batch = _pooled(1)
    batch["customer_id"] = _table(repo)["customer_id"].head(50).tolist() + list(
        batch["customer_id"].iloc[50:]
    )
    landed = [_land_bytes(repo, "collide.csv", _csv(batch), len(batch))]
    out = _retrain_outcome(repo, "id_collision", _ingest(repo), landed)
    if out.dropped:  # the training rows were silently replaced (keep="first", file order)
        out.problems.append(f"{out.dropped} rows dropped as duplicate ids, not rejected")
    return out


def nul_bytes(workdir: Path) -> Outcome:
    def make(b: pd.DataFrame) -> bytes:
        text = _csv(b)
        lines = text.split(b"\n")
        lines[4] = lines[4].replace(b",", b"\0,", 1)  # a NUL inside the first value
        return b"\n".join(lines)

    out = _batch_fault(workdir, "nul_bytes", make)
    batch_rows = out.landed[1].rows
    if out.quarantined != batch_rows:
        out.problems.append("a batch holding NUL bytes was not rejected")
    return out


# How long a command may run before it counts as hung: a CLI that ends does so in seconds on
# a quiet machine, but imports, GE and `dvc push` took 30 s under a load of 10 on 2 cores.
HANG_S = 120


def fifo(workdir: Path) -> Outcome:
    repo = _repo(workdir, "fifo")
    good = _pooled(2)
    os.mkfifo(repo / "data" / "landing" / "p.csv")
    (repo / "data" / "landing" / "p.csv.done").touch()
    landed = [_land(repo, "good.csv", good)]
    proc = _cli(repo)
    try:
        said = proc.communicate(timeout=HANG_S)[0].strip().splitlines()
        ended = f"ingest ended (exit {proc.returncode}): {' | '.join(said[-3:])}"
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        ended = f"ingest HUNG on the FIFO (killed after {HANG_S} s)"
    out = _retrain_outcome(repo, "fifo", ended, landed)
    if "HUNG" in ended:
        out.problems.append("ingest hung on a FIFO")
    return out


def field_1mb(workdir: Path) -> Outcome:
    def make(b: pd.DataFrame) -> bytes:
        b = b.astype({"payment_method": object})
        b.loc[b.index[2], "payment_method"] = "x" * 1_000_001
        return _csv(b)

    out = _batch_fault(workdir, "field_1mb", make)
    repo = workdir / "field_1mb" / "repo"
    if (repo / "data" / "landing" / "field_1mb.csv").exists():
        out.problems.append("the batch with a 1 MB field is still in landing (skipped forever)")
    return out


def params_typo(workdir: Path) -> Outcome:
    """A target column that does not exist, committed in params.yaml: a config fault, never
    charged to the good batch that lands next."""
    repo = _repo(workdir, "params_typo")
    params = repo / "params.yaml"
    good_params = params.read_text()
    raw = yaml.safe_load(good_params)
    raw["dataset"]["target"] = raw["dataset"]["target"] + "_typo"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    batch = _pooled(3)
    landed = [_land(repo, "good.csv", batch)]
    try:
        typo = _ingest(repo)
    except Exception as err:  # a config error may stop ingest: that is the right answer
        typo = f"{type(err).__name__}: {' '.join(str(err).split())[:200]}"
    blamed = any((repo / "data" / "quarantine").rglob("good.csv"))
    params.write_text(good_params)  # the typo fixed: the batch must be accepted now
    fixed = _ingest(repo)
    out = _retrain_outcome(repo, "params_typo", f"with the typo: {typo}; fixed: {fixed}", landed)
    if blamed:
        out.problems.append("the good batch was quarantined for a fault of params.yaml")
    return out


def predict_out_pinned(workdir: Path) -> Outcome:
    repo = _repo(workdir, "predict_out_pinned")
    batch = _pooled(4)
    landed = [_land(repo, "b.csv", batch)]
    said = _ingest(repo)
    pinned = next((repo / "data" / "raw" / "batches").rglob("*.csv"))
    before = pinned.read_bytes()
    score = repo / "data" / "predict" / "in.csv"
    score.parent.mkdir(parents=True, exist_ok=True)
    batch.drop(columns="churn").head(20).to_csv(score, index=False)
    target = pinned.relative_to(repo).as_posix()
    proc = subprocess.run(
        [sys.executable, "-m", "retrain.cli", "predict", str(score), "--out", target],
        cwd=repo,
        env=bench_env(),
        capture_output=True,
        text=True,
    )
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    out = _retrain_outcome(
        repo,
        "predict_out_pinned",
        f"{said}; predict --out {target}: exit {proc.returncode}, {lines[-1] if lines else ''}",
        landed,
    )
    if proc.returncode == 0 or len(lines) != 1:
        out.problems.append("predict --out onto a pinned batch was not refused in one line")
    if pinned.read_bytes() != before:
        out.problems.append("the pinned batch was overwritten")
    return out


def simulate_rows(workdir: Path) -> Outcome:
    """`retrain simulate` rows pass the suite of the table they imitate (200k rows), and a
    simulated batch is accepted and trained on."""
    from retrain.config import load_params_at
    from retrain.data.simulate import simulate
    from retrain.validation.suite import validate_frame

    repo = _repo(workdir, "simulate_rows")
    params = load_params_at(repo)
    rows = simulate(_table(repo), params.dataset, n_batches=1, batch_size=200_000, seed=11)[0]
    result = validate_frame(rows, params.dataset.suite, "simulated", schema=params.dataset)
    batch = _pooled(5)
    landed = [_land(repo, "sim.csv", batch)]
    said = f"200,000 rows: {result.headline()}; {_ingest(repo)}"
    out = _retrain_outcome(repo, "simulate_rows", said, landed)
    if not result.success:
        out.problems.append(f"simulated rows fail the suite: {result.headline()}")
    return out


def _no_rows(name: str, said: str, problems: list[str]) -> Outcome:
    out = Outcome(name, said)
    out.problems += problems
    return out


def predict_flow_input(workdir: Path) -> Outcome:
    """The predict flow's input_path outside the data folders: refused, its values unread."""
    from retrain.predicting import UnsafePath

    repo = _repo(workdir, "predict_flow_input")
    secret = workdir / "secret.csv"
    secret.write_text("customer_id,tenure\nSECRET-7,hunter2\n")
    from flows.predict import predict_flow

    try:
        predict_flow.fn(input_path=str(secret), repo=str(repo))
        said, problems = "read a file outside the data folders", ["the input was read"]
    except UnsafePath as err:
        said, problems = f"refused: {err}", []
        if "SECRET" in str(err) or "hunter2" in str(err):
            problems.append("the refusal echoes the file's values")
    except Exception as err:  # read, then failed: values may be echoed
        said = f"read it, then {type(err).__name__}: {' '.join(str(err).split())[:150]}"
        problems = ["the input outside the data folders was read"]
    return _no_rows("predict_flow_input", said, problems)


def gate_override(workdir: Path) -> Outcome:
    """A run's overrides must not lower the gate (registry.gate.margin: -1)."""
    from retrain.config import check_overrides

    try:
        check_overrides({"registry.gate.margin": -1})
    except Exception as err:
        return _no_rows("gate_override", f"refused: {' '.join(str(err).split())}", [])
    return _no_rows("gate_override", "accepted", ["a run override may lower the gate"])


def _serve(workdir: Path, name: str, *args: str) -> tuple[int | None, list[str]]:
    repo = _repo(workdir, name)
    proc = subprocess.Popen(
        [sys.executable, "-m", "retrain.cli", "serve", *args],
        cwd=repo,
        env=bench_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        said = proc.communicate(timeout=HANG_S)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        said = proc.communicate()[0] + f"\n(still running after {HANG_S} s: killed)"
        return None, said.strip().splitlines()
    return proc.returncode, said.strip().splitlines()


def serve_port(workdir: Path) -> Outcome:
    code, lines = _serve(workdir, "serve_port", "--port", "99999")
    # typer's own range error is a framed box of a few lines: no traceback, no success line.
    claimed = any(line.startswith("serving ") for line in lines)
    ok = code not in (0, None) and any("99999" in line for line in lines) and not claimed
    ok = ok and not any("Traceback" in line for line in lines)
    said = f"exit {code}: {' | '.join(lines[-2:])[:200]}"
    return _no_rows("serve_port", said, [] if ok else ["--port 99999 not refused"])


def serve_host(workdir: Path) -> Outcome:
    code, lines = _serve(workdir, "serve_host", "--host", "999.1.1.1")
    claimed = any(line.startswith("serving ") for line in lines)
    ok = code not in (0, None) and not claimed
    ok = ok and not any("Traceback" in line for line in lines)
    said = f"exit {code}: {' | '.join(lines[-2:])[:200]}"
    return _no_rows("serve_host", said, [] if ok else ["a success line before the host error"])


def _client(workdir: Path, name: str) -> Any:
    from fastapi.testclient import TestClient

    from retrain.config import load_params_at
    from retrain.serve.app import create_app

    repo = _repo(workdir, name)
    return TestClient(create_app(repo, load_params_at(repo), poll=False, token="s3cret"))


def docs_token(workdir: Path) -> Outcome:
    client = _client(workdir, "docs_token")
    codes = {path: client.get(path).status_code for path in ("/docs", "/openapi.json")}
    open_ = [p for p, c in codes.items() if c != 401]
    problems = [f"{p} answers without the token" for p in open_]
    return _no_rows("docs_token", f"without the token: {codes}", problems)


def json_true(workdir: Path) -> Outcome:
    client = _client(workdir, "json_true")
    row = _table(workdir / "json_true" / "repo").drop(columns="churn").iloc[0].to_dict()
    row["tenure"] = True
    got = client.post("/predict", json=row, headers={"Authorization": "Bearer s3cret"})
    ok = got.status_code == 422 and "tenure" in got.text
    said = f"tenure: true -> {got.status_code} {got.text[:120]}"
    return _no_rows("json_true", said, [] if ok else ["JSON true accepted for a numeric column"])


def deployment_run_bogus(workdir: Path) -> Outcome:
    """`retrain deployment-run retrain/retrain -p reason=bogus`: one line naming the
    parameter and the allowed values, a non-zero exit (a temporary Prefect server)."""
    from prefect.flows import load_flow_from_entrypoint

    env = _prefect_env()
    load_flow_from_entrypoint(RETRAIN).to_deployment(name="retrain").apply()
    proc = subprocess.run(
        [sys.executable, "-m", "retrain.cli", "deployment-run", "retrain/retrain"]
        + ["-p", "reason=bogus", "--timeout", "10"],
        env=env,
        capture_output=True,
        text=True,
    )
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    ok = proc.returncode != 0 and len(lines) == 1 and "'reason'" in lines[0]
    ok = ok and "manual" in lines[0]
    said = f"exit {proc.returncode}, {len(lines)} lines: {lines[-1][:160] if lines else ''}"
    return _no_rows("deployment_run_bogus", said, [] if ok else ["not one line naming reason"])


@dataclass(frozen=True)
class Case:
    """One row of the corpus: how the fault is made, what must hold, and how to run it."""

    name: str
    fault: str
    holds: str
    run: Fault
    fast: bool  # run by --quick and by `make test` (tests/integration/test_faults.py)


NEXT = (
    "the next retrain succeeds; rows in = trained on (or held out) + quarantined + dropped (rule)"
)
# The corpus (issues 12 and 25).
CASES: list[Case] = [
    Case(
        "partial_file",
        "a file still being written; a truncated last line",
        "0 rows lost",
        partial_file,
        True,
    ),
    Case(
        "dangling_link",
        "a dangling link, a link out of the landing folder",
        "links refused, 0 lost",
        dangling_link,
        True,
    ),
    Case(
        "duplicate",
        "the same bytes resent, renamed, gzipped",
        "stored once, 0 lost",
        duplicate,
        True,
    ),
    Case(
        "remote_down",
        "the DVC remote down during the push",
        "pushed on the next run, 0 lost",
        remote_down,
        True,
    ),
    Case(
        "column_order",
        "a batch with the same columns in another order",
        NEXT,
        column_order,
        True,
    ),
    Case("id_email", "e-mail addresses as customer_id", NEXT, id_email, True),
    Case(
        "id_newline",
        "a quoted customer_id holding a newline",
        NEXT,
        id_newline,
        True,
    ),
    Case(
        "id_collision",
        "50 ids equal to pinned training ids",
        NEXT + "; no id silently replaced",
        id_collision,
        True,
    ),
    Case(
        "nul_bytes",
        "a NUL byte inside a value",
        NEXT + "; the batch rejected",
        nul_bytes,
        True,
    ),
    Case(
        "fifo",
        "a FIFO p.csv with its .done marker",
        "ingest ends and refuses it; " + NEXT,
        fifo,
        True,
    ),
    Case(
        "field_1mb",
        "a 1 MB field",
        "quarantined, not skipped forever; " + NEXT,
        field_1mb,
        True,
    ),
    Case(
        "params_typo",
        "dataset.target misspelt in params.yaml",
        "the good batch not quarantined; " + NEXT,
        params_typo,
        True,
    ),
    Case(
        "predict_out_pinned",
        "retrain predict --out data/raw/batches/<batch>.csv",
        "refused in one line, batch unchanged; " + NEXT,
        predict_out_pinned,
        True,
    ),
    Case(
        "predict_flow_input",
        "the predict flow's input_path outside the data folders",
        "refused, no value echoed",
        predict_flow_input,
        True,
    ),
    Case(
        "simulate_rows",
        "retrain simulate, 200,000 rows",
        "they pass the suite; " + NEXT,
        simulate_rows,
        True,
    ),
    Case(
        "gate_override",
        "a run override registry.gate.margin: -1",
        "refused",
        gate_override,
        True,
    ),
    Case(
        "serve_port",
        "retrain serve --port 99999",
        "refused naming the port, no success line, non-zero exit",
        serve_port,
        True,
    ),
    Case(
        "serve_host",
        "retrain serve --host 999.1.1.1",
        "no success line, non-zero exit",
        serve_host,
        True,
    ),
    Case(
        "docs_token",
        "GET /docs, /openapi.json without the bearer token",
        "401",
        docs_token,
        True,
    ),
    Case(
        "json_true",
        "POST /predict with tenure: true",
        "422 naming tenure",
        json_true,
        True,
    ),
    Case(
        "deployment_run_bogus",
        "retrain deployment-run -p reason=bogus",
        "one line naming reason and the allowed values",
        deployment_run_bogus,
        False,
    ),
    Case(
        "kill_mid_ingest",
        "kill -9 in the middle of an ingest",
        "0 rows lost",
        kill_mid_ingest,
        False,
    ),
    Case("concurrent_ingest", "two ingests at once", "0 rows lost", concurrent_ingest, False),
    Case(
        "kill_mid_train",
        "kill -9 mid-train (retrain with overrides)",
        "the next retrain succeeds, 0 lost",
        kill_mid_train,
        False,
    ),
    Case(
        "concurrent_ingest_retrain",
        "an ingest during a retrain",
        "it waits for the lock, 0 lost",
        concurrent_ingest_retrain,
        False,
    ),
    Case(
        "kill_mid_tune",
        "kill -9 mid-tune (retrain with overrides)",
        "the next retrain succeeds, 0 lost",
        kill_mid_tune,
        False,
    ),
]


def held(out: Outcome) -> bool:
    """Whether a case held: nothing it checks failed and no row is lost."""
    return not out.problems and out.lost == 0


def run_case(case: Case, workdir: Path) -> Outcome:
    """One case in its own scratch folder; a case that raises is a failed case, not a crash."""
    try:
        return case.run(workdir / case.name)
    except Exception as exc:  # one broken case must not hide the others' rows
        failed = Outcome(case.fault, f"FAILED: {type(exc).__name__}: {exc}"[:300])
        failed.problems.append(failed.happened)
        return failed


def _row(case: Case, out: Outcome) -> list[str]:
    verdict = "held" if held(out) else "**NOT HELD**"
    return [
        case.name,
        case.fault,
        case.holds,
        out.happened.replace("|", "/").replace("\n", " "),
        str(out.rows_in),
        str(out.kept),
        str(out.quarantined),
        str(out.dropped),
        f"**{out.lost}**" if out.lost else "0",
        verdict,
    ]


def run(quick: bool, shared: Shared) -> Section:
    workdir = shared["workdir"] / "faults"
    workdir.mkdir(parents=True, exist_ok=True)
    section = Section(
        "F",
        "Faults: every case of issues 12 and 25, each in a scratch repo with its own remote",
        ["case", "fault", "must hold", "what happened", "rows in", "trained on or held out / kept",
         "quarantined", "dropped (rule)", "lost", "verdict"],
    )  # fmt: skip
    chosen = [c for c in CASES if (not ONLY or c.name in ONLY) and (c.fast or not quick)]
    outcomes = []
    try:
        for case in chosen:
            print(f"  fault {case.name} ...", flush=True)
            outcomes.append((case, run_case(case, workdir)))
    finally:
        _close_prefect()
    for case, out in outcomes:
        out.happened = out.happened.replace(str(workdir), "<scratch>")  # no temporary paths
        section.rows.append(_row(case, out))
        section.data[case.name] = {
            "happened": out.happened,
            "rows_in": out.rows_in,
            "kept": out.kept,
            "quarantined": out.quarantined,
            "dropped": out.dropped,
            "lost": out.lost,
            "problems": out.problems,
            "held": held(out),
        }
    lost = sum(abs(o.lost) for _, o in outcomes)
    broken = [c.name for c, o in outcomes if not held(o)]
    section.goals.append(
        Goal("rows lost", f"{lost} of {sum(o.rows_in for _, o in outcomes)}", "0", lost == 0)
    )
    section.goals.append(
        Goal("cases that did not hold", ", ".join(broken) or "none", "none", not broken)
    )
    if quick:
        section.notes.append(
            "--quick: the slow cases (kills, concurrent runs, a Prefect server) not run"
        )
    if ONLY:
        section.notes.append(f"--only: {', '.join(sorted(ONLY))}")
    section.notes.append(
        "next retrain: validate and prepare (the stages that read batches), in process; "
        "dropped: prepare's duplicate rows and ids, counted in metrics/prepare.json"
    )
    return section


ONLY: set[str] = set()  # --only NAME (repeatable): run just these faults


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--only", action="append", default=[], choices=[c.name for c in CASES])
    known, rest = parser.parse_known_args()
    ONLY.update(known.only)
    sys.argv = [sys.argv[0], *rest]
    done: list[Section] = []

    def kept(quick: bool, shared: Shared) -> Section:
        done.append(run(quick, shared))
        return done[-1]

    cli(kept, __doc__)
    if done and not ONLY and "--quick" not in rest:
        write_results(REPO / "bench" / "RESULTS.md", done[0])


BEGIN, END = "<!-- faults:begin (python -m bench.faults) -->", "<!-- faults:end -->"


def write_results(results: Path, section: Section) -> None:
    """Put the fault table between its markers in RESULTS.md (appended the first time)."""
    text = results.read_text() if results.exists() else ""
    block = f"{BEGIN}\n{section.markdown()}{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    results.write_text(text)
    print(f"wrote the fault table into {results}")


if __name__ == "__main__":
    main()
