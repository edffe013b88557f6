"""What every stage's `main()` shares: read params, run, report errors in one line."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from retrain.config import DEFAULT_PARAMS, ConfigError, Params, load_params
from retrain.errors import RetrainError

T = TypeVar("T")


def stage_main(name: str, run: Callable[[Params], T], argv: list[str] | None = None) -> T:
    """Parse `--params`, run the stage, turn a RetrainError into one line and exit code 1."""
    parser = argparse.ArgumentParser(prog=f"python -m retrain.stages.{name}")
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS)
    args = parser.parse_args(argv)
    began = time.time()
    # SIGTERM (a cancelled retrain stops DVC and its stage) exits through `finally` blocks,
    # so what a stage started (the tune workers, in sessions of their own) stops with it.
    before = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        result = run(load_params(args.params))
    except (RetrainError, ConfigError) as err:
        print(f"{name}: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        signal.signal(signal.SIGTERM, before)  # a caller's own (a test calling main())
    report_times(name, began)
    return result


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


# Set to a file path to collect every stage's timings there as JSON lines (bench/orchestration.py
# sets it to split a retrain's wall time into the stages' work and everything around it).
TIMES_ENV = "RETRAIN_STAGE_TIMES"


def report_times(name: str, began: float) -> None:
    """Print the stage's own time and its process's start-up (interpreter + imports).

    Lazy imports inside `run` count as the stage's time.
    """
    import psutil

    ended = time.time()
    startup = began - psutil.Process().create_time()
    print(f"{name}: {ended - began:.1f} s (process start and imports {startup:.1f} s)")
    target = os.environ.get(TIMES_ENV)
    if target:
        line = {
            "stage": name,
            "startup_s": startup,
            "run_s": ended - began,
            "ended": ended,
            "peak_rss_mb": _peak_rss_mb(),
        }
        with open(target, "a") as fh:
            fh.write(json.dumps(line) + "\n")


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM on Linux, else getrusage's maximum)."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(x.split()[1]) for x in fh if x.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS
