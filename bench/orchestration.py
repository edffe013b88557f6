"""Bench 4, orchestration overhead: a retrain through Prefect + DVC vs the stages' own work.

Every stage process reports its own times (`retrain.stages._common.report_times`, collected
through RETRAIN_STAGE_TIMES): its start-up (interpreter and imports) and its `run()`. So one
run splits into the stages' work, their start-ups, and everything else: the orchestration.
Full mode, on the real data with the default params (what a user's retrain runs):
  - the `retrain` Prefect flow on a fresh repository, against a temporary Prefect server
    started beforehand (a deployment's server is already up): wall time, stage times, and
    the flow's task runs as the server recorded them
  - `dvc repro` on a second fresh repository: DVC's share of the overhead
  - a no-op `dvc repro` (goal <= 5 s), and import time per library in a fresh interpreter
Goal: overhead (wall - stages' run() - stages' start-up) <= 10% of the stages' run().
--quick runs only the DVC half on a small repository (validate and prepare).

    .venv/bin/python -m bench.orchestration [--quick]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from bench.common import (
    Goal,
    Run,
    Section,
    Shared,
    bench_env,
    cli,
    dvc_repro,
    make_repo,
    pipeline_params,
    timed_dvc,
    timed_flow,
)
from bench.scaling import QUICK_BUDGETS, QUICK_STAGES, SIZES_QUICK

NOOP_BUDGET_S = 5.0
OVERHEAD_GOAL = 0.10
LIBRARIES = (
    "torch",
    "lightning.pytorch",
    "great_expectations",
    "evidently",
    "optuna",
    "lightgbm",
    "sklearn",
    "prefect",
    "pandas",
)


def import_seconds(module: str, repeats: int) -> float:
    """Fastest of `repeats` fresh interpreters importing `module`, less a bare interpreter."""

    def once(code: str) -> float:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", code], check=True, env=bench_env(), capture_output=True
        )
        return time.perf_counter() - start

    bare = min(once("pass") for _ in range(repeats))
    return min(once(f"import {module}") for _ in range(repeats)) - bare


def _overhead_goal(name: str, run: Run) -> Goal:
    share = run.overhead_s / run.run_s
    return Goal(
        name,
        f"{share:.1%} ({run.overhead_s:.1f} s over {run.run_s:.1f} s of stage work)",
        f"<= {OVERHEAD_GOAL:.0%}",
        share <= OVERHEAD_GOAL,
    )


def _where_the_flow_time_goes(flow: Run, dvc: Run) -> str:
    """The flow's orchestration time split by where it is spent, from the same run."""
    names = {s["stage"] for s in flow.stages}
    stage_tasks = sum(flow.tasks.get(name, 0.0) for name in names)
    in_stage_tasks = stage_tasks - flow.run_s - flow.startup_s
    others = {k: v for k, v in flow.tasks.items() if k not in names}
    outside = flow.wall_s - stage_tasks - sum(others.values())
    per_stage = in_stage_tasks / max(len(names), 1)
    return (
        f"where the retrain flow's {flow.overhead_s:.1f} s of orchestration go "
        f"({flow.wall_s:.1f} s in all: the stages' run() {flow.run_s:.1f} s, their start-ups "
        f"{flow.startup_s:.1f} s): (a) {in_stage_tasks:.1f} s inside the stage tasks but outside "
        f"the stage processes, ~{per_stage:.1f} s per stage: each task runs `dvc repro "
        "--single-item <stage>` (one task per stage, so the UI shows each stage's state, "
        "duration and log), and each of those DVC processes starts Python, imports DVC, "
        "loads the repository and hashes deps and outs again, where one `dvc repro` over all "
        f"{len(dvc.stages)} stages spends {dvc.overhead_s:.1f} s on its own work; (b) the other "
        "tasks, as "
        "the server recorded them: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(others.items(), key=lambda x: -x[1]))
        + f"; (c) {outside:.1f} s outside any task: the flow run's start, the lock, `dvc plots "
        "show`, publishing artifacts. All of it is fixed per retrain, so it weighs on a "
        "table as small as Telco and hardly at all on a large one (the two goals above). "
        "Running the whole pipeline in one DVC process would save most of (a) but give up "
        "the per-stage tasks; we keep the tasks"
    )


def _stage_rows(section: Section, dvc: Run, flow: Run | None) -> None:
    by_flow = {s["stage"]: s for s in flow.stages} if flow else {}
    for s in dvc.stages:
        f = by_flow.get(s["stage"])
        section.rows.append(
            [
                s["stage"],
                f"{s['startup_s']:.1f} s",
                f"{s['run_s']:.1f} s",
                f"{dvc.log_s.get(s['stage'], float('nan')):.1f} s",
                f"{f['startup_s']:.1f} s / {f['run_s']:.1f} s" if f else "-",
                f"{flow.tasks.get(s['stage'], float('nan')):.1f} s" if flow else "-",
            ]
        )
    section.rows.append(
        [
            "**total**",
            f"{dvc.startup_s:.1f} s",
            f"{dvc.run_s:.1f} s",
            f"**{dvc.wall_s:.1f} s** (wall)",
            f"{flow.startup_s:.1f} s / {flow.run_s:.1f} s" if flow else "-",
            f"**{flow.wall_s:.1f} s** (wall)" if flow else "-",
        ]
    )


def run(quick: bool, shared: Shared) -> Section:
    section = Section(
        "4",
        "Orchestration overhead and import times",
        [
            "stage",
            "dvc repro: start-up + imports",
            "run()",
            "stage in dvc's log",
            "retrain flow: start-up / run()",
            "flow's task run",
        ],
    )
    if quick:
        n = SIZES_QUICK[0]
        repo = make_repo(shared["workdir"] / "orchestration", pipeline_params(QUICK_BUDGETS), n)
        target = [QUICK_STAGES[-1]]
        where = f"{n:,} synthetic rows, stages {', '.join(QUICK_STAGES)} only"
        flow = None
    else:
        params = pipeline_params()
        flow_repo = make_repo(shared["workdir"] / "orchestration-flow", params)
        target = []
        where = "the real data (7,043 rows) and the default params.yaml, each on a fresh repo"
        flow = timed_flow(flow_repo)
    if not quick and "pipeline_run" in shared:  # bench P's dvc repro: the same run, reused
        repo, dvc = shared["pipeline_run"]["repo"], shared["pipeline_run"]["run"]
    else:
        if not quick:
            repo = make_repo(shared["workdir"] / "orchestration-dvc", params)
        dvc = timed_dvc(repo, *target)
    noops = [dvc_repro(repo, *target) for _ in range(3)]
    if any(stages_run for _, stages_run in noops):
        raise RuntimeError("the second dvc repro was not a no-op")
    noop = min(t for t, _ in noops)
    _stage_rows(section, dvc, flow)

    at_scale = shared.get("retrain_at_scale")
    if flow is not None:
        section.goals.append(
            _overhead_goal(
                "a retrain through Prefect + DVC vs the stages' own work, Telco (7,043 rows)",
                flow,
            )
        )
    if at_scale:
        big: Run = at_scale["run"]
        section.goals.append(
            _overhead_goal(
                f"the same at {at_scale['rows']:,} rows (bench 6's default-params retrain)", big
            )
        )
        section.notes.append(
            f"at {at_scale['rows']:,} rows (bench 6) the retrain flow took {big.wall_s:.0f} s: "
            f"the stages' run() {big.run_s:.0f} s, start-ups {big.startup_s:.0f} s, "
            f"orchestration {big.overhead_s:.0f} s ({big.overhead_s / big.run_s:.1%}). The "
            "orchestration cost is fixed per retrain (a DVC process per stage, the push, the "
            "record, Prefect's bookkeeping), so its share falls as the data grows"
        )
    else:
        section.goals.append(
            Goal(
                "a retrain through Prefect + DVC vs the stages' own work",
                "not run in --quick (DVC alone: see the notes)",
                f"<= {OVERHEAD_GOAL:.0%}",
                None,
            )
        )
    section.goals.append(
        Goal(
            "no-op dvc repro", f"{noop:.2f} s", f"<= {NOOP_BUDGET_S:.0f} s", noop <= NOOP_BUDGET_S
        )
    )
    section.notes.append(
        f"DVC alone: dvc repro took {dvc.wall_s:.1f} s: the stages' run() {dvc.run_s:.1f} s, "
        f"their start-ups (interpreter + imports, shown separately) {dvc.startup_s:.1f} s, "
        f"and DVC's own work (hashing deps and outs, the lock, the run cache, starting each "
        f"stage's shell) {dvc.overhead_s:.1f} s = {dvc.overhead_s / dvc.run_s:.1%} of the "
        "stages' run()"
    )
    if flow is not None:
        section.notes.append(_where_the_flow_time_goes(flow, dvc))
    section.notes.append(
        f"on {where}; stage times are reported by each stage's own process (start-up: from "
        "the process's creation to its run(); lazy imports inside run() count as run()); "
        f"no-op dvc repro: fastest of 3 ({', '.join(f'{t:.2f}' for t, _ in noops)} s)"
    )
    if not quick:
        lib = {m: import_seconds(m, 2) for m in LIBRARIES}
        section.notes.append(
            "import time per library in a fresh interpreter (fastest of 2, bare interpreter "
            "subtracted): "
            + ", ".join(f"{m} {s:.1f} s" for m, s in sorted(lib.items(), key=lambda x: -x[1]))
            + ". Each stage imports only what it uses (tests/unit/test_imports.py); the "
            "validate stage imports great_expectations only to build Data Docs or to detail a "
            "failure (bench 2)"
        )
        section.data["imports"] = lib
    section.data |= {
        "dvc": dvc.__dict__,
        "flow": flow.__dict__ if flow else None,
        "noop_s": [t for t, _ in noops],
        "noop_median_s": statistics.median(t for t, _ in noops),
    }
    shared["dvc_repo"] = repo
    return section


def main() -> None:
    cli(run, __doc__)


if __name__ == "__main__":
    main()
