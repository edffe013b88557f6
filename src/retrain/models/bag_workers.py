"""A bag's members fitted W at a time in processes of their own (train.workers, issue 27).

Each member is the same `fit` call the one-at-a-time path makes, with the same keywords (its
folds, seed `seed + i`, checkpoint, callbacks) and the same torch threads, in a fresh `spawn`ed
interpreter: `fit` seeds everything and the Trainer is deterministic, so the member's weights
are the same bits (tests/unit/models/test_bagging.py). The parent collects the members in
member order and computes everything else itself, so every output is the same bytes.

One process per member, not a pool: when a process dies (killed, out of memory) its exit code
says which member it was, and the others can be stopped at once (`Process.terminate`); a pool
breaks as a whole and, before Python 3.14, cannot stop its running workers.

As with any `spawn`ed process, a member's process imports the parent's `__main__` module: a
script that calls the train stage itself needs the `if __name__ == "__main__":` guard (the
stage's own `python -m retrain.stages.train` has it), or each member would rerun the script.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import torch

from retrain.errors import RetrainError
from retrain.models.training import FitResult, fit


class BagError(RetrainError):
    """A bag member's process raised or died (train.workers): the stage writes no model."""


def _member_main(options: dict[str, Any], result: Path) -> None:
    """A member's process: `fit`, then the FitResult pickled to `result`; on an exception its
    one line to `result`'s `error.txt` (the parent's message) and the traceback to stderr."""
    code = 0
    try:
        fitted = fit(**options)
        with result.open("wb") as file:
            pickle.dump(fitted, file)
    except Exception as err:
        result.unlink(missing_ok=True)
        result.with_name("error.txt").write_text(f"{type(err).__name__}: {err}")
        traceback.print_exc()
        code = 1
    # Everything is written: skip the interpreter's teardown of torch and Lightning, ~2 s a
    # member on a busy 2-core machine, while the parent waits on this process's exit.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _failure(i: int, k: int, seed: int, process: BaseProcess, result: Path) -> BagError:
    error = result.with_name("error.txt")
    code = process.exitcode or 0
    if error.exists():
        why = f"raised {error.read_text()}"
    elif code < 0:
        why = f"was killed by {signal.Signals(-code).name}"
    else:
        why = f"exited with code {code}"
    return BagError(
        f"train.bag_folds: member {i + 1}/{k} (seed {seed + i}) {why}; no model written"
    )


def _start(i: int, options: dict[str, Any], threads: int) -> tuple[BaseProcess, Path]:
    """Member i's process, started, and the file its FitResult will be pickled to."""
    # The threads the one-at-a-time path trains with (pinned, else this process's): float
    # reductions in the same order, so the same bits.
    options["num_threads"] = options.get("num_threads") or threads
    result = Path(options["checkpoint"]).parent / "result.pkl"
    result.parent.mkdir(parents=True, exist_ok=True)
    # spawn, not fork: a forked torch (its thread pools, Lightning's state) is not safe.
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=_member_main, args=(options, result), name=f"member{i}")
    process.start()
    return process, result


def fit_in_processes(
    member: Callable[[int], dict[str, Any]], k: int, workers: int, seed: int
) -> list[FitResult]:
    """Fit members 0..k-1 (`member(i)`: its `fit` keywords, checkpoint in a folder of its
    own), at most `workers` at a time; their FitResults in member order.

    Raises:
        BagError: the first member (lowest index) whose process raised or died; the members
            still running are stopped.
    """
    threads = torch.get_num_threads()
    running: dict[int, tuple[BaseProcess, Path]] = {}
    done: dict[int, FitResult] = {}
    queued = iter(range(k))
    try:
        while len(done) < k:
            while len(running) < workers and (i := next(queued, None)) is not None:
                running[i] = _start(i, member(i), threads)
            wait([process.sentinel for process, _ in running.values()])
            for i in sorted(running):
                process, result = running[i]
                if process.exitcode is None:
                    continue
                del running[i]
                if process.exitcode != 0 or not result.exists():
                    raise _failure(i, k, seed, process, result)
                # Our own file, just written by our own child process.
                with result.open("rb") as file:
                    done[i] = pickle.load(file)
    finally:
        for process, _ in running.values():
            process.terminate()
            process.join(5)  # Lightning turns SIGTERM into a graceful stop, which may not come
            if process.exitcode is None:
                process.kill()
                process.join()
    return [done[i] for i in range(k)]
