"""Every stage reports its own time and its process's start-up (what bench 4 splits a run by)."""

from __future__ import annotations

import json
import time

from retrain.stages._common import TIMES_ENV, stage_main


def test_stage_main_reports_its_times(tmp_path, monkeypatch, capsys, default_params_raw):
    import yaml

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(default_params_raw))
    times = tmp_path / "times.jsonl"
    monkeypatch.setenv(TIMES_ENV, str(times))

    def slow(_params):
        time.sleep(0.2)
        return "done"

    assert stage_main("demo", slow, ["--params", str(params)]) == "done"
    assert stage_main("demo", slow, ["--params", str(params)]) == "done"
    lines = [json.loads(x) for x in times.read_text().splitlines()]
    assert [x["stage"] for x in lines] == ["demo", "demo"]  # appended, one line per run
    assert all(0.2 <= x["run_s"] < 5 for x in lines)
    assert all(0 < x["startup_s"] and x["peak_rss_mb"] > 10 for x in lines)
    # The printed time is the recorded one (a starved CPU can stretch a 0.2 s sleep to 1 s).
    out = capsys.readouterr().out
    assert all(f"demo: {x['run_s']:.1f} s (process start and imports" in out for x in lines)


def test_nothing_is_written_without_the_variable(tmp_path, monkeypatch, default_params_raw):
    import yaml

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(default_params_raw))
    monkeypatch.delenv(TIMES_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    stage_main("demo", lambda _p: None, ["--params", str(params)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


STOPPED_STAGE = r"""
import sys, time
from pathlib import Path
from retrain.stages._common import stage_main

def run(_params):
    try:
        print("running", flush=True)
        time.sleep(60)
    finally:  # where the tune stage stops its workers
        Path(sys.argv[2]).write_text("cleaned up")

stage_main("demo", run, ["--params", sys.argv[1]])
"""


def test_a_stage_stopped_by_sigterm_runs_its_finally_blocks(tmp_path, default_params_raw):
    # A cancelled retrain stops DVC's stage with SIGTERM: the tune stage's workers, in sessions
    # of their own, are stopped only by its `finally`.
    import signal
    import subprocess
    import sys

    import yaml

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(default_params_raw))
    done = tmp_path / "done.txt"
    proc = subprocess.Popen(
        [sys.executable, "-c", STOPPED_STAGE, str(params), str(done)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "running"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert done.read_text() == "cleaned up"
