"""Run every benchmark and regenerate bench/RESULTS.md (or RESULTS.quick.md with --quick).

    .venv/bin/python -m bench.run_all            # make bench: full sizes, under 30 min on 2 cores
    .venv/bin/python -m bench.run_all --quick    # make bench-quick: smoke sizes, under 2 min
    .venv/bin/python -m bench.run_all --only training validation

The benchmarks share one scratch folder: bench 4 reuses bench 6's 1M-row retrain and the
pipeline bench's dvc repro, so nothing runs twice. Bench 7 runs its own splits (ten per
table, the stages in-process). A benchmark that fails is
reported as failed and the others still run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import (
    drift,
    faults,
    orchestration,
    pipeline,
    quality,
    scaling,
    serving,
    startup,
    tasks,
    training,
    tuning,
    tuning_parallel,
    validation,
)
from bench.common import (
    HEADER,
    ORDER,
    REPO,
    Goal,
    Section,
    Shared,
    add_jobs_argument,
    hand_notes,
    machine,
)
from retrain.infra import git as infra_git

# In the order they run: scaling and the pipeline before orchestration (which reuses the
# 1M-row retrain of one and the dvc repro of the other).
BENCHES: dict[str, Callable[[bool, Shared], Section]] = {
    "training": training.run,
    "validation": validation.run,
    "drift": drift.run,
    "tuning": tuning.run,
    "tuning_parallel": tuning_parallel.run,
    "scaling": scaling.run,
    "pipeline": pipeline.run,
    "orchestration": orchestration.run,
    "quality": quality.run,
    "tasks": tasks.run,  # bench 7b: the regression and multiclass tables (issue 26)
    "faults": faults.run,
    "serving": serving.run,  # serves a copy of the pipeline bench's model when it ran
    "startup": startup.run,  # each stage's start-up beside its work (issue 24)
}
FULL_ONLY = {"pipeline"}  # the default pipeline takes minutes; --quick reads its last metrics
PENDING: list[Section] = []


def _commit() -> str:
    def git(*args: str) -> str:
        return infra_git.run(REPO, *args, check=False).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + (" (with uncommitted changes)" if dirty else "")


def _failed(name: str, err: BaseException) -> Section:
    tail = traceback.format_exception(err)[-1].strip()
    return Section("?", f"{name}: FAILED", goals=[Goal(f"bench {name}", tail, "runs", False)])


def render(
    sections: list[Section], info: dict[str, str], quick: bool, seconds: float, hand: str = ""
) -> str:
    ordered = sorted(sections, key=lambda s: ORDER.index(s.item) if s.item in ORDER else 99)
    mode = "--quick (smoke sizes: NOT the results)" if quick else "full"
    out = [
        "# Benchmarks (issue 7)",
        "",
        HEADER,
        "",
        f"- mode: {mode}; whole run {seconds / 60:.1f} min",
        f"- commit: {_commit()}",
        *[f"- {k}: {v}" for k, v in info.items() if k != "gpu"],
        f"- GPU: {info['gpu']} (bench 1 adds GPU rows where torch.cuda.is_available())"
        if info["gpu"] != "none"
        else "- GPU: none on this machine: no GPU runs were possible this session (bench 1 adds "
        "GPU rows where torch.cuda.is_available())",
        "",
        "## Goals",
        "",
        "| item | goal | measured | target | verdict |",
        "|---|---|---|---|---|",
    ]
    for s in ordered:
        for g in s.goals:
            out.append(f"| {s.item} | {g.name} | {g.measured} | {g.target} | **{g.verdict}** |")
    out.append("")
    out += [s.markdown() for s in ordered]
    return "\n".join(out) + ("\n" + hand if hand else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke sizes (under 2 minutes)")
    parser.add_argument("--only", nargs="+", choices=list(BENCHES), help="run only these")
    parser.add_argument("--output", type=Path, help="default bench/RESULTS[.quick].md")
    add_jobs_argument(parser)
    args = parser.parse_args()
    output = args.output or REPO / "bench" / ("RESULTS.quick.md" if args.quick else "RESULTS.md")
    names = [n for n in BENCHES if (not args.only or n in args.only)]
    if args.quick:
        names = [n for n in names if n not in FULL_ONLY]
    info = machine()
    sections: list[Section] = [*PENDING]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="retrain-bench-") as tmp:
        shared: Shared = {"workdir": Path(tmp), "jobs": args.jobs}
        for name in names:
            print(f"--- bench {name} ({'quick' if args.quick else 'full'})", flush=True)
            began = time.perf_counter()
            try:
                section = BENCHES[name](args.quick, shared)
            except Exception as err:  # one broken bench must not hide the others' numbers
                traceback.print_exc()
                section = _failed(name, err)
            section.seconds = time.perf_counter() - began
            print(section.text(), flush=True)
            sections.append(section)
            if name == "serving" and not args.quick and section.item == "8":
                serving.publish(section)  # its JSON and README block (RESULTS.md: below)
    seconds = time.perf_counter() - start
    hand = hand_notes(output.read_text()) if output.exists() else ""
    output.write_text(render(sections, info, args.quick, seconds, hand))
    print(f"wrote {output} ({seconds / 60:.1f} min)")


if __name__ == "__main__":
    main()
