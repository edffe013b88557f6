"""The local stack against a REAL Prefect server: up, deploy, trigger, read back, down."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from urllib.parse import unquote

import pytest
import yaml

from retrain.infra.dvc import lock_outputs
from retrain.orchestration import browser, stack
from tests.conftest import SMALLER_BUDGET, copy_repo, with_budget

pytestmark = [pytest.mark.integration, pytest.mark.slow]

READ_BACK = r"""
import asyncio, json, re, subprocess, sys, time, urllib.request
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter, ArtifactFilterFlowRunId, DeploymentFilter, DeploymentFilterId,
    FlowRunFilter, FlowRunFilterId, FlowRunFilterState, FlowRunFilterStateType,
    FlowRunFilterTags)
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.flow_runs import wait_for_flow_run

# No parameters: a run started by hand (as from the UI) must say `manual`, not `schedule`.
run = run_deployment("retrain/retrain", timeout=900, poll_interval=2)
# Then a smaller training budget is committed (argv[1]: the new params.yaml), as a reviewed
# change would be: the drift retrain below reruns every stage, at about half the cost.
with open("params.yaml", "w") as f:
    f.write(sys.argv[1])
git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
subprocess.run([*git, "commit", "-qm", "smaller budget", "params.yaml"], check=True)
# A predict of a file that does not exist fails (the `run failed` notification) ...
bad = run_deployment(
    "predict/predict", parameters={"input_path": "missing.csv"}, timeout=300, poll_interval=2)
# ... and the monitor rejects one batch and finds drift in another: it starts a retrain
# (reason drift), whose outcome is notified (issue 28).
mon = run_deployment("monitor/monitor", timeout=600, poll_interval=2)


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.read().decode("utf-8", "replace")


async def main():
    async with get_client() as client:
        out = {}
        started = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
            tags=FlowRunFilterTags(all_=[f"monitor:{mon.name}"])))
        assert len(started) == 1, [r.name for r in started]
        drift = await wait_for_flow_run(started[0].id, timeout=900, poll_interval=3)
        runs = (("retrain", run), ("predict", bad), ("monitor", mon), ("drift_retrain", drift))
        for key, r in runs:
            r = await client.read_flow_run(r.id)
            runs = FlowRunFilter(id=FlowRunFilterId(any_=[r.id]))
            tasks = await client.read_task_runs(flow_run_filter=runs)
            arts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[r.id])))
            links = {}
            for a in arts:
                found = re.fullmatch(r"\[[^\]]*\]\((\S+)\)", str(a.data).strip())
                if found:  # a link artifact (Markdown `[text](url)`)
                    status, body = fetch(found[1])  # the URL the UI opens
                    links[a.key] = {"url": found[1], "status": status, "body": body[:20000]}
            out[key] = {
                "id": str(r.id), "name": r.name, "tags": sorted(r.tags),
                "state": r.state.type.value, "state_name": r.state.name,
                "message": r.state.message, "parameters": r.parameters,
                "tasks": {t.name: t.state.type.value for t in tasks},
                "task_names": {t.name: t.state.name for t in tasks},
                "artifacts": sorted(a.key for a in arts if a.key), "links": links,
                "artifact_ids": {a.key: str(a.id) for a in arts if a.key}}
        schedules = {}
        for name in ("retrain/retrain", "monitor/monitor", "predict/predict"):
            dep = await client.read_deployment_by_name(name)
            schedules[name] = [
                (s.schedule.cron, s.parameters) for s in dep.schedules]
        out["schedules"] = schedules
        # The scheduler fires: upcoming (Scheduled) runs of every scheduled deployment,
        # within a bounded wait (it runs every 60 s; the retrain above took longer).
        upcoming, deadline = {}, time.monotonic() + 150
        while True:
            for name in ("retrain/retrain", "monitor/monitor"):
                dep = await client.read_deployment_by_name(name)
                found = await client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])),
                    flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))))
                upcoming[name] = sorted(r.expected_start_time.isoformat() for r in found)
            if all(upcoming.values()) or time.monotonic() > deadline:
                break
            await asyncio.sleep(3)
        out["upcoming"] = upcoming
        print(json.dumps(out, default=str))

asyncio.run(main())
"""


# The project lock across machines: three "machines" (processes, each with its own lock file,
# so only the server can keep them apart) take one Prefect concurrency limit with a 60 s
# lease. The first is killed by SIGKILL while it holds it; the other two each hold it for
# 2 s. Run beside READ_BACK (its flows take the real project lock, this takes its own
# limit), so the lease's minute (the shortest the server accepts) costs the suite nothing.
LOCK_CHECK = r"""
import json, os, signal, subprocess, sys, time
from pathlib import Path

TAKE = r'''
import json, sys, time
from pathlib import Path
from retrain.registry.lock import exclusive
lock_file, limit, log, hold = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), float(sys.argv[4])
with exclusive(lock_file, lock_file.parent.name, 300, poll_s=0.2, limit=limit, lease_s=60,
               on_wait=lambda line: None):
    start = time.time()
    print("held", flush=True)
    time.sleep(hold)
    with log.open("a") as f:
        f.write(json.dumps([lock_file.parent.name, start, time.time()]) + "\n")
'''
work, limit = Path(sys.argv[1]), sys.argv[2]
log = work / "intervals.jsonl"

def take(machine, hold):
    # each "machine" has its own lock file: only the server can keep them apart
    (work / machine).mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-c", TAKE, str(work / machine / "retrain.lock"), limit, str(log),
         str(hold)], stdout=subprocess.PIPE, text=True)

launched = time.time()  # its lease (60 s from when it got it) cannot end before +60 s
crashed = take("machine-0", 3600)
assert crashed.stdout.readline().strip() == "held"
crashed.send_signal(signal.SIGKILL)
crashed.wait()
killed_at = time.time()
workers = [take(f"machine-{i}", 2.0) for i in (1, 2)]
for w in workers:
    w.wait(timeout=400)
print(json.dumps({"launched": launched, "killed_at": killed_at,
                  "codes": [w.returncode for w in workers],
                  "intervals": [json.loads(l) for l in log.read_text().splitlines()]}))
"""


ANNOUNCE = """
from retrain.orchestration.notify import announce
print(announce("canary.aborted", "churn-model", version="v2.0.0",
               outcome="churn-model canary v2.0.0 aborted: prod v1.0.0 -> v1.0.0"))
"""


class Receiver(http.server.BaseHTTPRequestHandler):
    """A webhook endpoint on loopback that keeps every JSON body it was sent."""

    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Receiver.received.append(json.loads(body or b"{}"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def _land_batches(repo) -> None:
    import pandas as pd

    from retrain.config import load_params_at
    from retrain.data.simulate import Drift, simulate, write_batches
    from retrain.ingest import mark_landed

    schema = load_params_at(repo).dataset
    mix = Drift("mix", "contract", 0.9, "Month-to-month")
    table = pd.read_csv(repo / "data" / "raw" / "telco_churn.csv")
    landing = repo / "data" / "landing"
    write_batches(
        simulate(table, schema, n_batches=1, batch_size=300, seed=4, drift=mix), landing, "mix"
    )
    broken = simulate(table, schema, n_batches=1, batch_size=50, seed=5)[0]
    broken = broken.drop(columns=["tenure"])
    broken.to_csv(landing / "zz-broken.csv", index=False)
    mark_landed(landing / "zz-broken.csv")  # complete: the landing protocol's marker


# Prefect's SQLite backend refuses a write at once (no busy wait) when a read transaction
# would have to become a write transaction while another writer holds the database: a
# worker's heartbeat upsert then logs "database is locked" once, under load (seen with two
# test processes on two cores), and the next heartbeat goes through. Every other error counts.
BENIGN = ("sqlite3.OperationalError) database is locked",)


def _server_errors(log: str) -> list[str]:
    """The server log's error records (a timestamped line and its traceback) not BENIGN."""
    records = re.split(r"(?m)^(?=\d\d:\d\d:\d\d\.\d+ \| )", log)
    bad = [r for r in records if "Traceback" in r or " ERROR " in r]
    return [r for r in bad if not any(b in r for b in BENIGN)]


def test_server_errors_keep_all_but_the_benign_lock_refusal():
    log = (
        "10:00:00.000 | INFO    | ok\n"
        "10:00:01.000 | ERROR   | uvicorn.error - Exception in ASGI application\n"
        "Traceback (most recent call last):\n"
        "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database is locked\n"
        "10:00:02.000 | ERROR   | prefect.server.services.scheduler - Unexpected error\n"
        "Traceback (most recent call last):\n"
        "AttributeError: 'Select' object has no attribute 'x'\n"
    )
    (left,) = _server_errors(log)
    assert "scheduler" in left


def test_stack_runs_the_retrain_deployment_end_to_end(tmp_path, trained_repo, monkeypatch):
    # The session's trained repo (its workspace trained, nothing recorded): the manual retrain
    # finds every stage up to date and trains nothing, so the one pipeline this test pays for
    # is the drift retrain's, which reruns every stage on the landed batch. That two runs of
    # every stage give the same bytes is proven by test_records' replay (`retrain reproduce`).
    repo = copy_repo(trained_repo, tmp_path / "repo")
    # The stack's server (it inherits this environment) looks for expired leases every 2 s
    # rather than every 15 s: the killed holder's slot is freed as soon as its 60 s lease (the
    # server's minimum) runs out, by the real repossessor, so the lock check below ends sooner.
    monkeypatch.setenv("PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS", "2")
    # Its worker asks for scheduled runs every 2 s rather than every 10 s: each of this test's
    # six deployment runs starts up to 8 s sooner (a quiet run was half idle, CPU 139 s of 271).
    monkeypatch.setenv("PREFECT_WORKER_QUERY_SECONDS", "2")
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    up = stack.up(repo, stack.free_port(), timeout=120, webhook_url=hook)
    try:
        env = {**os.environ, "PREFECT_API_URL": up.api_url}
        _land_batches(repo)
        locks = subprocess.Popen(
            [sys.executable, "-c", LOCK_CHECK, str(tmp_path / "machines"), "lock-check"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        smaller = with_budget(yaml.safe_load((repo / "params.yaml").read_text()), SMALLER_BUDGET)
        proc = subprocess.run(
            [sys.executable, "-c", READ_BACK, yaml.safe_dump(smaller, sort_keys=False)],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=1500,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        seen = json.loads(proc.stdout.strip().splitlines()[-1])
        out, err = locks.communicate(timeout=400)
        assert locks.returncode == 0, err[-3000:]
        held = json.loads(out.strip().splitlines()[-1])
        (tmp_path / "seen.json").write_text(json.dumps(seen, indent=1))  # for a failure
        # A canary command's notification is about the model, not a run (automations.yaml
        # matches it by resource): the one `retrain canary abort` sends, through the server.
        sent = subprocess.run(
            [sys.executable, "-c", ANNOUNCE],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert sent.returncode == 0 and "sent to" in sent.stdout, sent.stderr[-3000:]
        kinds = {
            "FAILED",
            "Drift",
            "Promoted",
            "Batch rejected",
            "Canary aborted",
            "Drift retrain",
        }
        deadline = time.monotonic() + 60  # automations act a few seconds after the event
        while time.monotonic() < deadline and not kinds <= _subjects(Receiver.received):
            time.sleep(1)
        # Flow parameters from the API are checked, and a failed deployment run says why.
        refused = {
            "retrain/retrain": ['overrides={"paths.raw_data": "/etc"}'],
            "predict/predict": [
                "input_path=data/raw/telco_churn.csv",
                "output_path=/tmp/x.parquet",
            ],
        }
        failures = {}
        for name, params in refused.items():
            ran = subprocess.run(
                [sys.executable, "-m", "retrain.cli", "deployment-run", name, "--timeout", "600"]
                + [arg for p in params for arg in ("-p", p)],
                cwd=repo,
                env=env,
                capture_output=True,
                text=True,
                timeout=700,
            )
            failures[name] = (ran.returncode, ran.stdout, ran.stderr)
        # Issue 28: at a 1400 px window every column of the gate and metrics artifacts shows
        # in the UI (the first model's, and the drift retrain's against a champion).
        columns = {
            f"{key}/{art}": browser.evaluate(
                f"{up.ui_url}/artifacts/artifact/{seen[key]['artifact_ids'][art]}",
                CELLS,
                ready="document.querySelectorAll('table th').length > 0",
                size=(1400, 1000),
            )
            for key in ("retrain", "drift_retrain")
            for art in ("gate", "metrics")
        }
        # ... and the drift retrain's Data Docs, opened offline, list the batch it validated.
        docs = browser.dump_dom(seen["drift_retrain"]["links"]["data-docs"]["url"])
    finally:
        down = stack.down(repo)
        receiver.shutdown()
        (tmp_path / "received.json").write_text(json.dumps(Receiver.received, indent=1))
    assert down == up
    # The lock held across "machines": no two holders at once, and the killed holder's slot
    # stayed taken until its 60 s lease ran out (then the repossessor, every 2 s, freed it).
    assert held["codes"] == [0, 0], held
    (_, start1, end1), (_, start2, end2) = sorted(held["intervals"], key=lambda i: i[1])
    assert end1 <= start2, held
    assert held["launched"] + 59 <= start1 <= held["killed_at"] + 150, held
    for pid in (up.server_pid, up.worker_pid, up.reports_pid):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    ret = seen["retrain"]
    assert ret["state"] == "COMPLETED", ret["message"]
    # Both scheduled deployments have upcoming runs, at their cron times; the server logged
    # no error (with SQLAlchemy 2.1 its scheduler fails every minute and none appear).
    assert set(seen["upcoming"]) == {"retrain/retrain", "monitor/monitor"}
    for name, when in seen["upcoming"].items():
        assert when, f"the scheduler created no run of {name}"
    assert all(t.endswith("03:00:00+00:00") for t in seen["upcoming"]["retrain/retrain"])
    assert all(t.endswith("06:00:00+00:00") for t in seen["upcoming"]["monitor/monitor"])
    server_log = (repo / ".prefect" / "server.log").read_text(errors="replace")
    errors = _server_errors(server_log)
    assert not errors, "\n".join(errors)[-3000:]
    # A refused parameter fails the run with a one-line reason naming it.
    code, out, err = failures["retrain/retrain"]
    assert code == 1, out + err
    (line,) = err.strip().splitlines()
    assert line.startswith("error: retrain/retrain run ") and " Failed: " in line, line
    assert "'paths.raw_data' is not a tunable key" in line
    code, out, err = failures["predict/predict"]
    assert code == 1 and "output path /tmp/x.parquet: outside the project" in err, out + err
    stages = ["validate", "prepare", "tune", "train", "evaluate", "drift", "report"]
    assert {k: v for k, v in ret["tasks"].items() if k in stages} == dict.fromkeys(
        stages, "COMPLETED"
    )
    # The workspace was trained on these inputs: DVC skipped every stage of the manual run.
    assert {k: v for k, v in ret["task_names"].items() if k in stages} == dict.fromkeys(
        stages, "Skipped"
    )
    # Around the stages: the champion lookup, the gate, the reports, the push, the record and
    # the model history page.
    others = sorted(k for k in ret["tasks"] if k not in stages)
    assert others == [
        "challenge",
        "find-champion",
        "publish-history",
        "publish-reports",
        "push",
        "write-record",
    ]
    assert set(ret["tasks"].values()) == {"COMPLETED"}
    assert {
        "metrics",
        "validation-summary",
        "plots",
        "data-docs",
        "gate",
        "run-record",
        "model-card",
        "tune-trials",
    } <= set(ret["artifacts"])
    # Started by hand: manual, named and tagged so, and its final state says the outcome.
    assert ret["parameters"].get("reason", "manual") == "manual"
    assert ret["name"].startswith("retrain-manual-") and "reason:manual" in ret["tags"]
    assert ret["state_name"] == "Promoted" and "promoted" in ret["tags"]
    run_id = ret["name"].removeprefix("retrain-manual-")
    assert f"run/{run_id}" in ret["message"]
    # The flow drove DVC itself: on the inputs of a plain `dvc repro` it reran nothing, and
    # recorded that run's dvc.lock as it was (no override or stage of its own crept in).
    lock_now = subprocess.run(
        ["git", "show", f"run/{run_id}:dvc.lock"], cwd=repo, capture_output=True, text=True
    ).stdout
    trained_lock = (trained_repo / "dvc.lock").read_text()
    before, after = lock_outputs(trained_lock), lock_outputs(lock_now)
    differ = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    assert not differ, f"outputs that differ: {differ}"
    assert lock_now == trained_lock
    # The UI's links open: served over HTTP on loopback from this run's own folder.
    for key, page in (("plots", "plots/index.html"), ("data-docs", "data_docs/index.html")):
        link = ret["links"][key]
        assert link["url"] == f"{up.reports_url}/{ret['name']}/{page}", link["url"]
        assert link["status"] == 200
    assert "<title>DVC Plot</title>" in ret["links"]["plots"]["body"]
    assert "Great Expectations" in ret["links"]["data-docs"]["body"]
    published = repo / "reports" / "runs" / ret["name"] / "plots" / "index.html"
    assert published.read_text()[:20000] == ret["links"]["plots"]["body"]
    assert seen["schedules"] == {
        "retrain/retrain": [["0 3 * * 1", {"reason": "schedule"}]],
        "monitor/monitor": [["0 6 * * *", {}]],
        "predict/predict": [],
    }
    # The monitor: named by its batch, its outcome in the state, its Evidently report linked.
    mon = seen["monitor"]
    assert mon["name"] == "monitor-mix-0001+1"
    assert mon["state_name"] == "Batch rejected + Drift: retrain started"
    assert {"batch-rejected", "drift-tripped", "retrain-started"} <= set(mon["tags"])
    drift_link = mon["links"]["drift-report"]
    assert drift_link["url"].startswith(f"{up.reports_url}/monitor-mix-0001%2B1-")
    assert drift_link["status"] == 200 and "/mix-0001-" in drift_link["url"]
    served = (
        repo / "reports" / "runs" / unquote(drift_link["url"].removeprefix(up.reports_url + "/"))
    )
    assert served.read_text()[:20000] == drift_link["body"]
    batch = served.parent.name  # ... the copy of this batch's Evidently report
    assert (
        served.read_bytes() == (repo / "reports" / "monitor" / batch / "drift.html").read_bytes()
    )
    assert seen["predict"]["state"] == "FAILED"
    # Notifications: the four events reached the webhook, each naming its run with a link.
    by_subject = {m["subject"].split(":")[0]: m for m in Receiver.received}
    assert kinds <= set(by_subject), Receiver.received
    # Two predict runs fail (a missing input, then a refused output path): take the first's.
    failed = [m for m in Receiver.received if seen["predict"]["name"] in m["text"]]
    assert failed and failed[0]["subject"].startswith("FAILED"), Receiver.received
    by_subject["FAILED"] = failed[0]
    # The manual run's promotion (the drift retrain may be promoted too).
    (promoted,) = [
        m
        for m in Receiver.received
        if m["subject"].startswith("Promoted") and ret["name"] in m["subject"]
    ]
    by_subject["Promoted"] = promoted
    ui = up.ui_url
    for subject, run in (
        ("FAILED", seen["predict"]),
        ("Promoted", ret),
        ("Drift", mon),
        ("Batch rejected", mon),
    ):
        message = by_subject[subject]
        assert run["name"] in message["text"], message
        assert f"{ui}/runs/flow-run/{run['id']}" in message["text"], message
    assert "zz-broken.csv" in by_subject["Batch rejected"]["subject"]
    canary = by_subject["Canary aborted"]
    assert canary["subject"] == "Canary aborted: churn-model v2.0.0", canary
    assert "prod v1.0.0 -> v1.0.0" in canary["text"], canary
    assert "mix-0001" in by_subject["Drift"]["subject"]
    # The retrain the monitor started: its outcome (promoted or not, and why) is notified, with
    # the Evidently report of the batch that started it (issue 28) ...
    drift_run = seen["drift_retrain"]
    assert drift_run["parameters"]["reason"] == "drift", drift_run["parameters"]
    # It reran every stage on the new data, tuning from the champion's parameters.
    assert {k: v for k, v in drift_run["task_names"].items() if k in stages} == dict.fromkeys(
        stages, "Completed"
    )
    assert {"tune-progress", "tune-trials", "gate", "metrics"} <= set(drift_run["artifacts"])
    assert drift_run["name"].startswith("retrain-drift-") and drift_run["state"] == "COMPLETED"
    outcome = by_subject["Drift retrain"]
    assert outcome["subject"] == f"Drift retrain: {drift_run['state_name']} ({drift_run['name']})"
    assert drift_run["message"] in outcome["text"], (drift_run["message"], outcome)
    assert drift_link["url"] in outcome["text"] and mon["name"] in outcome["text"], outcome
    assert f"{ui}/runs/flow-run/{drift_run['id']}" in outcome["text"], outcome
    # ... and the Data Docs of its validation list that batch beside the pinned table.
    listed = re.sub(r"<[^>]+>", " ", docs)
    assert f"{batch}.csv" in listed and "telco_churn.csv" in listed, listed[:3000]
    # Every cell of the gate and metrics tables shows whole in the 1400 px window.
    for page, found in columns.items():
        assert found["tables"], page
        for cells in found["tables"]:
            cut = [
                c for c in cells if c["left"] < c["shown_left"] or c["right"] > c["shown_right"]
            ]
            assert not cut, (page, found["width"], cut)
    assert "prod, recorded" in [c["text"] for c in columns["retrain/metrics"]["tables"][0]]
    # ... and recorded the run: the first model is prod.
    tags = subprocess.run(["git", "tag"], cwd=repo, capture_output=True, text=True).stdout
    assert "churn-model#prod#1" in tags.split() and "run/" in tags


# Every cell of every table, where it lies and where it is cut off: by the window, or by an
# ancestor that clips (a scrolling wrapper shows only what lies inside it).
CELLS = """(() => {
  const width = document.documentElement.clientWidth;
  const shown = el => {
    let left = 0, right = width;
    for (let a = el.parentElement; a; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== 'visible') {
        const box = a.getBoundingClientRect();
        left = Math.max(left, box.left); right = Math.min(right, box.right);
      }
    }
    return [left, right];
  };
  return {width, tables: Array.from(document.querySelectorAll('table')).map(t =>
    Array.from(t.querySelectorAll('th, td')).map(c => {
      const r = c.getBoundingClientRect(), [left, right] = shown(c);
      // A cell whose content is wider than it is cut too (its text runs past its border).
      const over = Math.max(0, c.scrollWidth - c.clientWidth);
      return {text: c.innerText.trim().slice(0, 60), left: r.left, right: r.right + over,
              shown_left: left, shown_right: Math.min(right, r.right)};
    }))};
})()"""


def _subjects(messages: list[dict]) -> set[str]:
    return {m.get("subject", "").split(":")[0] for m in messages}
