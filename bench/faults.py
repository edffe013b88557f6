"""Fault table (issue 12): inject each fault into a scratch git + DVC repo, then account for
every landed row: stored as a batch, or kept in quarantine, and in the DVC remote either way.

    .venv/bin/python -m bench.faults            # every fault
    .venv/bin/python -m bench.faults --quick    # the cheap ones (the smoke test runs these)

Each fault is a function in FAULTS (name, function, cheap): it lands batches, breaks
something, lets ingest run (and run again, as the next scheduled run would), and returns what
happened. "lost" counts landed rows whose bytes are not in the DVC remote at the end, stored or
quarantined: it must be 0. Faults of other commands (kill mid-tune, mid-train) join the list
with the same signature.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.common import RAW, Goal, Section, Shared, bench_env, cli, make_repo, pipeline_params


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
    return simulate(pd.read_csv(RAW), schema, n_batches=n, batch_size=size, seed=seed)


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
    subprocess.run(
        [sys.executable, "-m", "dvc", "remote", "modify", "--local", "local", "url", url],
        cwd=repo,
        env=bench_env(),
        check=True,
        capture_output=True,
    )


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


# (name, function, cheap): the cheap ones run with --quick and in the smoke test.
FAULTS: list[tuple[str, Fault, bool]] = [
    ("partial_file", partial_file, True),
    ("dangling_link", dangling_link, True),
    ("duplicate", duplicate, True),
    ("remote_down", remote_down, True),
    ("kill_mid_ingest", kill_mid_ingest, False),
    ("concurrent_ingest", concurrent_ingest, False),
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
    for name, fault, cheap in FAULTS:
        if quick and not cheap:
            continue
        print(f"  fault {name} ...", flush=True)
        out = fault(workdir / name)
        outcomes.append(out)
        section.rows.append(
            [
                out.fault,
                out.happened,
                str(out.rows_in),
                str(out.kept),
                str(out.quarantined),
                f"**{out.lost}**" if out.lost else "0",
            ]
        )
        section.data[name] = {
            "happened": out.happened,
            "rows_in": out.rows_in,
            "kept": out.kept,
            "quarantined": out.quarantined,
            "lost": out.lost,
        }
    lost = sum(o.lost for o in outcomes)
    section.goals.append(
        Goal(
            "rows lost under injected faults",
            f"{lost} of {sum(o.rows_in for o in outcomes)}",
            "0",
            lost == 0,
        )
    )
    if quick:
        section.notes.append("--quick: kill mid-ingest and concurrent ingests not run")
    return section


if __name__ == "__main__":
    cli(run, __doc__)
