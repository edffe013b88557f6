"""Reproducible retraining end to end: records, replay, registry, rollback, crash and
concurrency, with the real flow on the small params.

One history is built once per module: R1 records the trained repo as it is (first model,
v1 in prod); a run that tries to open the gate by overrides is refused before it starts; R2
retrains on a new batch with the gate opened wide by a committed params.yaml, with a smaller
training budget (tests/conftest.py's SMALLER_BUDGET: what it proves is about records and
the gate's rules, not how good a model is) (v2 promoted);
R3 retrains on a second batch with an unreachable margin, committed too, and a run-only
override (v3 registered, not promoted). Tests that change the registry work on copies.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint

from tests.conftest import REPO, SMALLER_BUDGET, copy_repo, pipeline_env, with_budget

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RETRAIN = f"{REPO}/flows/retraining.py:retraining_flow"
PREDICT = f"{REPO}/flows/predict.py:predict_flow"
ONNX = "models/model/model.onnx"
# The gate's rules change only by a committed params.yaml (issue 25.7); the small holdout of
# this history is below the default minimum of evidence, so both set it to zero.
OPEN_GATE = {
    "margin": -1.0,
    "tolerance": 1.0,
    "slice_tolerance": 1.0,
    "max_ece": 1.0,
    "min_rows": 0,
    "min_class_rows": 0,
}
CLOSED_GATE = {  # no AUC can improve by 1; the other rules as shipped
    "margin": 1.0,
    "tolerance": 0.0,
    "slice_tolerance": 0.02,
    "max_ece": 0.05,
    "min_rows": 0,
    "min_class_rows": 0,
}
RUN_ONLY = {"evaluate.calibration_bins": 8}  # an override that leaves the model alone


@pytest.fixture(scope="module")
def harness(prefect_harness):
    """The session's temporary Prefect server (tests/conftest.py)."""
    return prefect_harness


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "retrain.cli", *args],
        cwd=repo,
        env=pipeline_env(),
        capture_output=True,
        text=True,
    )


def land_batch(repo: Path, number: int) -> str:
    """Batch `number` of new customers (fresh ids), ingested as the monitor flow does:
    validated, moved under data/raw/batches, data.dvc re-pinned and pushed."""
    from retrain.config import load_params_at
    from retrain.data.simulate import simulate, write_batches
    from retrain.ingest import ingest_file

    params = load_params_at(repo)
    table = pd.concat(
        pd.read_csv(f) for f in sorted((repo / "data" / "raw").glob("*.csv"))
    )  # the table itself, not the batches landed so far
    batch = simulate(
        table, params.dataset, n_batches=1, batch_size=500, seed=10 + number, first_batch=number
    )
    (file,) = write_batches(batch, params.paths.landing, f"b{number}")
    result = ingest_file(file, params)
    assert result.status == "accepted", result.reason
    return result.md5


def commit_gate(repo: Path, rules: dict[str, Any], budget: dict[str, Any] | None = None) -> str:
    """Change registry.gate in params.yaml (and a training budget: tests/conftest.py's
    with_budget) and commit it, as a reviewed pull request would."""
    params = with_budget(yaml.safe_load((repo / "params.yaml").read_text()), budget or {})
    params["registry"]["gate"].update(rules)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "gate", "params.yaml")
    return git(repo, "show", "HEAD:params.yaml")


def refused_gate_override(repo: Path) -> dict[str, Any]:
    """A retrain asked to lower the gate by overrides: what it said and what it left."""
    before = {
        "head": git(repo, "rev-parse", "HEAD"),
        "tags": git(repo, "tag"),
        "params": (repo / "params.yaml").read_text(),
        "status": git(repo, "status", "--porcelain"),
    }
    state = load_flow_from_entrypoint(RETRAIN)(
        repo=str(repo), overrides={"registry.gate.margin": -1.0}, return_state=True
    )
    after = {
        "head": git(repo, "rev-parse", "HEAD"),
        "tags": git(repo, "tag"),
        "params": (repo / "params.yaml").read_text(),
        "status": git(repo, "status", "--porcelain"),
    }
    return {"failed": state.is_failed(), "state": state, "before": before, "after": after}


def retrain(repo: Path, **kwargs: Any) -> dict[str, Any]:
    state = load_flow_from_entrypoint(RETRAIN)(repo=str(repo), return_state=True, **kwargs)
    assert state.is_completed(), state.message
    return state.result()


def record_of(repo: Path, run_id: str) -> dict[str, Any]:
    return json.loads(git(repo, "show", f"run/{run_id}:registry/run.json"))


def prod(repo: Path) -> str:
    from retrain.registry.versions import in_stage

    found = in_stage(repo, "churn-model", "prod")
    return found.version if found else ""


@dataclass(frozen=True)
class History:
    repo: Path
    runs: list[dict[str, Any]]  # the flow's results of R1, R2, R3
    refused: dict[str, Any]  # the run that tried to open the gate by overrides
    committed: str  # params.yaml as last committed (R3's closed gate)


@pytest.fixture(scope="module")
def history(harness, trained_repo, tmp_path_factory) -> History:
    repo = copy_repo(trained_repo, tmp_path_factory.mktemp("history") / "repo")
    r1 = retrain(repo, reason="manual")
    land_batch(repo, 1)
    refused = refused_gate_override(repo)
    commit_gate(repo, OPEN_GATE, SMALLER_BUDGET)
    r2 = retrain(repo, reason="drift")
    land_batch(repo, 2)
    committed = commit_gate(repo, CLOSED_GATE)
    r3 = retrain(repo, reason="schedule", overrides=RUN_ONLY)
    return History(repo, [r1, r2, r3], refused, committed)


def test_a_run_cannot_lower_the_gate(history):
    # Issue 25.7: overrides {"registry.gate.margin": -1} promoted a model 0.006 worse. Now
    # the run fails at once, in one line naming the key, before the lock, any stage or any
    # write: the same HEAD, tags, params.yaml and workspace as before it.
    from retrain.config import ConfigError

    refused = history.refused
    assert refused["failed"]
    with pytest.raises(ConfigError) as err:
        refused["state"].result()
    assert str(err.value) == (
        "overrides: 'registry.gate.margin' is a rule of the promotion gate: it changes only "
        "by a committed params.yaml (a reviewed change), never by a run's overrides"
    )
    assert refused["after"] == refused["before"]
    # The record of each run shows the rules it applied: params.yaml's, as committed.
    r1, r2, r3 = (record_of(history.repo, r["run_id"]) for r in history.runs)
    assert r1["gate"]["rules"]["margin"] == 0.002  # the shipped params.yaml's
    assert r2["gate"]["rules"] | OPEN_GATE == r2["gate"]["rules"]
    assert r3["gate"]["rules"] | CLOSED_GATE == r3["gate"]["rules"]
    assert r3["gate"]["rules"]["confidence"] == 0.95 and r3["gate"]["rules"]["resamples"] > 0
    assert (
        "gain >= 1.0 and the 95% interval's lower bound > -0.0"
        in (r3["gate"]["rules"]["promote_if"])
    )
    # ... and the paired difference with its interval and the holdout's size.
    gate = r3["gate"]
    low, high = gate["interval"]
    assert low <= gate["gain"] <= high and gate["rows"] == gate["holdout"]["rows"] > 0
    assert f"95% CI [{low:+.4f}, {high:+.4f}], n = {gate['rows']}" in gate["reasons"][0]


def test_every_retrain_leaves_a_pinned_record(history):
    repo, (r1, r2, r3) = history.repo, history.runs
    records = [record_of(repo, r["run_id"]) for r in (r1, r2, r3)]
    # Three records, three data versions: R2 and R3 each trained on one more batch.
    assert [r["data"]["batches"].__len__() for r in records] == [0, 1, 2]
    assert len({r["data"]["md5"] for r in records}) == 3
    assert [r["reason"] for r in records] == ["manual", "drift", "schedule"]
    assert all(r2["stages"].values()) and all(r3["stages"].values())
    for rec in records:
        tag = f"run/{rec['run_id']}"
        assert git(repo, "cat-file", "-t", tag) == "tag"  # annotated
        # The commit pins what ran: data.dvc, dvc.lock and metrics agree with the record.
        pinned = git(repo, "show", f"{tag}:data.dvc")
        assert rec["data"]["md5"] in pinned
        lock = git(repo, "show", f"{tag}:dvc.lock")
        assert rec["artifacts"][ONNX] in lock
        # ... and its plot data (`dvc plots diff run/<A> run/<B>` draws each run's own).
        assert json.loads(git(repo, "show", f"{tag}:plots/roc.json"))
        metrics = json.loads(git(repo, "show", f"{tag}:metrics/evaluate.json"))
        assert metrics["tabm"]["roc_auc"] == rec["metrics"]["roc_auc"]
        assert rec["tuned_params"]["params"] and rec["environment"]["packages"]["torch"]
    # The gate decided as configured, and said so.
    assert [r["gate"] for r in (r1, r2, r3)] == ["first", "promoted", "rejected"]
    assert [r["model"]["version"] for r in records] == ["v1.0.0", "v2.0.0", "v3.0.0"]
    assert [r["model"]["prod"] for r in records] == ["v1.0.0", "v2.0.0", "v2.0.0"]
    assert records[2]["champion"]["version"] == "v2.0.0"
    assert any("short of the margin" in reason for reason in records[2]["gate"]["reasons"])
    assert records[2]["gate"]["holdout"]["excluded_seen_by_champion"] > 0
    # Issue 27: each batch's held-out share (ingest.holdout_share of its 500 rows) joins the
    # gate's holdout, which grows as the unseen test rows shrink; each record names the
    # pinned holdout's version, which its commit pins.
    assert "holdout" not in records[0]["data"]
    assert [r["gate"]["holdout"]["pinned_rows"] for r in records[1:]] == [100, 200]
    for rec in records[1:]:
        version = rec["data"]["holdout"]["md5"]
        assert version == rec["gate"]["holdout"]["pinned_version"]
        assert version in git(repo, "show", f"run/{rec['run_id']}:holdout.dvc")
    assert records[2]["data"]["holdout"]["md5"] != records[1]["data"]["holdout"]["md5"]
    # R3's study started from the champion's (v2's) tuned parameters.
    champion_params = records[1]["tuned_params"]["params"]
    warm = records[2]["warm_start"]
    assert warm == {"champion": "churn-model@v2.0.0", "params": champion_params}
    trials = pd.read_csv(repo / "models" / "tune" / "trials.csv")
    first = trials.iloc[0]
    # Trial 0 is the champion's values of the searched keys (the rest is the model section).
    searched = [key for key in champion_params if key in trials.columns]
    assert len(searched) >= 4, trials.columns
    for key in searched:
        assert first[key] == pytest.approx(champion_params[key]), key
    # Each record says which overrides its run had and which dependency lock it came from;
    # the overrides are in the record's params.yaml, never in the branch's.
    assert [r["overrides"] for r in records] == [None, None, RUN_ONLY]
    lock_md5 = hashlib.md5((REPO / "requirements.lock").read_bytes()).hexdigest()
    assert {r["requirements_lock"]["md5"] for r in records} == {lock_md5}
    assert "margin: -1.0" in git(repo, "show", f"run/{records[1]['run_id']}:params.yaml")
    assert "calibration_bins: 8" in git(repo, "show", f"run/{records[2]['run_id']}:params.yaml")
    assert git(repo, "show", "HEAD:params.yaml") == history.committed
    assert "calibration_bins: 8" not in history.committed
    assert (repo / "params.yaml").read_text().strip() == git(repo, "show", "HEAD:params.yaml")
    # `retrain runs` lists them; the checkout is clean after the last one.
    listing = cli(repo, "runs")
    assert listing.returncode == 0, listing.stderr
    lines = [ln for ln in listing.stdout.splitlines() if ln[:8].isdigit()]
    assert [ln.split()[0] for ln in lines] == [r["run_id"] for r in records]
    assert "promoted" in lines[1] and "<- prod" in lines[1] and "rejected" in lines[2]
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""


def test_gto_show_lists_the_versions_and_prod(history):
    gto = Path(sys.executable).parent / "gto"
    out = subprocess.run(
        [str(gto), "show", "churn-model", "--json"],
        cwd=history.repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    stages = {v["version"]: [s["stage"] for s in v["stages"]] for v in json.loads(out)}
    # v1 was prod, v2 is: GTO shows the version that holds the stage now.
    assert stages == {"v1.0.0": [], "v2.0.0": ["prod"], "v3.0.0": []}
    assert prod(history.repo) == "v2.0.0"


def test_a_record_replays_bit_for_bit_in_a_fresh_clone(history, tmp_path):
    # R3: the record with the most behind it (two landed batches, the champion's warm start,
    # a run-only override, a rejected model). Every record replays by the same code path
    # (`retrain reproduce`: clone, check out run/<id>, pull, `dvc repro --force`), and each
    # replay reruns the whole pipeline, so one is replayed, not all. It is also the suite's
    # proof that a second run of every stage, in another directory, gives the same bytes.
    for result in history.runs[2:]:
        rec = record_of(history.repo, result["run_id"])
        out = subprocess.run(  # the clone kept in tmp_path (TMPDIR), for the model cards
            [sys.executable, "-m", "retrain.cli", "reproduce", result["run_id"], "--keep"],
            cwd=history.repo,
            env={**pipeline_env(), "TMPDIR": str(tmp_path)},
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        clone = Path(out.stdout.split("clone kept at ", 1)[1].split()[0])
        assert clone.is_relative_to(tmp_path), clone
        assert _cards(clone) == _cards(history.repo)
        assert "identical: every artifact, metric and tuned parameter" in out.stdout
        assert f"environment: requirements.lock md5 {rec['requirements_lock']['md5']}" in (
            out.stdout
        )
        onnx_row = next(ln for ln in out.stdout.splitlines() if ln.startswith(ONNX))
        assert onnx_row.split()[1:4] == [rec["artifacts"][ONNX][:12]] * 2 + ["same"]
        roc_row = next(ln for ln in out.stdout.splitlines() if ln.startswith("tabm.roc_auc"))
        assert roc_row.split()[1:4] == [str(rec["metrics"]["roc_auc"])] * 2 + ["same"]


def _cards(repo: Path) -> tuple[dict[str, Any], list[str]]:
    """The model cards (train's JSON, report's Markdown) less the git revision they name:
    the record's run trained at its parent commit, a replay at the record's own (`retrain
    reproduce` shows the cards, not compared, for that reason alone)."""
    card = json.loads((repo / "models" / "model" / "model_card.json").read_text())
    commit = str(card.pop("git_revision")).removesuffix("-dirty")
    md = (repo / "reports" / "model_card.md").read_text().replace(commit, "<revision>")
    lines = [ln.replace("<revision>-dirty", "<revision>") for ln in md.splitlines()]
    return card, [ln for ln in lines if ln.strip() and not ln.startswith("Tracked files")]


def predicted_by(repo: Path, tmp_path: Path) -> tuple[str, str]:
    table = pd.read_csv(repo / "data" / "raw" / "telco_churn.csv").head(30)
    src = repo / "data" / "predict" / "to_score.csv"  # the flow reads only the data folders
    src.parent.mkdir(parents=True, exist_ok=True)
    table.drop(columns=["churn"]).to_csv(src, index=False)
    out = load_flow_from_entrypoint(PREDICT)(input_path=str(src), repo=str(repo))
    scored = pd.read_parquet(out)
    assert scored["registry_version"].nunique() == 1
    return scored["registry_version"].iloc[0], scored["model_version"].iloc[0]


def onnx_version(rec: dict[str, Any]) -> str:
    return "md5:" + rec["artifacts"][ONNX][:12]


def test_rollback_restores_the_previous_prod_and_predict_serves_it(history, tmp_path):
    repo = copy_repo(history.repo, tmp_path / "repo")
    r1, r2, r3 = (record_of(repo, r["run_id"]) for r in history.runs)
    # The workspace holds v3 (not promoted); predict serves prod, v2.
    from retrain.scoring import model_version

    assert model_version(repo / ONNX) == onnx_version(r3) != onnx_version(r2)
    assert predicted_by(repo, tmp_path) == ("churn-model@v2.0.0", onnx_version(r2))
    out = cli(repo, "rollback")
    assert out.returncode == 0, out.stderr
    assert "churn-model prod: v2.0.0 -> v1.0.0" in out.stdout
    assert prod(repo) == "v1.0.0"
    assert predicted_by(repo, tmp_path) == ("churn-model@v1.0.0", onnx_version(r1))
    # `retrain predict` is the same code path: the same prod model, the same scores.
    to_score = repo / "data" / "predict" / "to_score.csv"
    by_cli = cli(repo, "predict", str(to_score), "--out", "predictions/c.csv")
    assert by_cli.returncode == 0, by_cli.stderr
    assert "scored 30 rows" in by_cli.stdout and "churn-model@v1.0.0" in by_cli.stdout
    scored = pd.read_csv(repo / "predictions" / "c.csv")
    assert set(scored["registry_version"]) == {"churn-model@v1.0.0"}
    assert set(scored["model_version"]) == {onnx_version(r1)}
    again = cli(repo, "rollback")
    assert again.returncode == 1 and "no earlier one to roll back to" in again.stderr


KILLABLE = """
import json, sys
from prefect.flows import load_flow_from_entrypoint
flow = load_flow_from_entrypoint(sys.argv[1])
result = flow(repo=sys.argv[2], reason="manual", overrides=json.loads(sys.argv[3]))
print("RESULT " + json.dumps(result, default=str), flush=True)
"""


def _reader(proc: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)


def _wait_for(lines: queue.Queue[str], text: str, timeout: float, seen: list[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return
    pytest.fail(f"no {text!r} within {timeout}s:\n" + "".join(seen[-40:]))


def _repossess(limit: str) -> None:
    """Free the slot of a killed holder's lease. The harness's server runs no background
    services, so no repossessor does it there; a real server does once the lease runs out
    (tests/integration/test_stack.py proves it)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(limit, GlobalConcurrencyLimitUpdate(active_slots=0))


def test_sigkill_mid_training_and_a_concurrent_retrain(history, tmp_path):
    from prefect.settings import PREFECT_API_URL

    from retrain.registry.lock import LIMIT, RetrainBusy

    repo = copy_repo(history.repo, tmp_path / "repo")
    head, tags = git(repo, "rev-parse", "HEAD"), git(repo, "tag")
    last_record = (repo / "registry" / "run.json").read_bytes()
    served = predicted_by(repo, tmp_path)
    assert served[0] == "churn-model@v2.0.0"
    ckpt = repo / "models" / "model" / "model.ckpt"

    # A: a retrain whose training lasts long enough to be killed in the middle (only train
    # and what follows it rerun: a longer run would test nothing more).
    env = {
        **pipeline_env(),
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
    }
    slow = {"train.max_epochs": 300, "train.patience": 300}
    a = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, RETRAIN, str(repo), json.dumps(slow)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: DVC and the stage die with it
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(a, lines), daemon=True).start()
    seen: list[str] = []
    try:
        _wait_for(lines, "Running stage 'train'", 400, seen)
        deadline = time.monotonic() + 120
        while not ckpt.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ckpt.exists(), "training never saved a first checkpoint"
        # B, started while A trains, fails at once and names A.
        state = load_flow_from_entrypoint(RETRAIN)(
            repo=str(repo), lock_timeout_s=0, return_state=True
        )
        assert state.is_failed()
        # (The harness is a Prefect server: the lock is its concurrency limit.)
        held = r"another retrain holds retrain-project-lock \(Prefect concurrency limit at \S+\) "
        held += r"\(pid"
        with pytest.raises(RetrainBusy, match=held):
            state.result()
        assert a.poll() is None, "A finished before it could be killed"
        os.killpg(a.pid, signal.SIGKILL)
    finally:
        if a.poll() is None:
            os.killpg(a.pid, signal.SIGKILL)
        a.wait()

    _repossess(LIMIT)

    # Nothing of A was recorded: no commit, no tag, no registry change, no half record.
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "tag") == tags
    assert (repo / "registry" / "run.json").read_bytes() == last_record
    assert prod(repo) == "v2.0.0"
    assert predicted_by(repo, tmp_path) == served  # the champion still serves

    # A died with its overrides in params.yaml; the next, plain, retrain puts the committed
    # params.yaml back before it starts, says so, and runs with it (the lock died with A;
    # DVC clears A's stale stage locks).
    committed = git(repo, "show", "HEAD:params.yaml")
    assert "max_epochs: 300" in (repo / "params.yaml").read_text()
    c_run = subprocess.run(
        [sys.executable, "-c", KILLABLE, RETRAIN, str(repo), "null"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = c_run.stdout + c_run.stderr
    assert c_run.returncode == 0, out[-3000:]
    c = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    assert "restored params.yaml: run " in out and "{'train.max_epochs': 300" in out
    assert not c["stages"]["tune"]  # what A finished before it died stands
    rec = record_of(repo, c["run_id"])
    # With the committed params, the same data and champion, C's model is R3's (DVC reran
    # train or restored it from its run cache): A's 300 epochs did not leak into it.
    r3 = record_of(repo, history.runs[2]["run_id"])
    assert rec["artifacts"][ONNX] == r3["artifacts"][ONNX]
    assert rec["overrides"] is None and c["overrides"] is None
    assert git(repo, "show", f"run/{c['run_id']}:params.yaml") == committed
    assert (repo / "params.yaml").read_text().strip() == committed
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    train_params = lock["stages"]["train"]["params"]["params.yaml"]
    assert train_params["train"]["max_epochs"] == yaml.safe_load(committed)["train"]["max_epochs"]
    assert rec["champion"]["version"] == "v2.0.0" and rec["model"]["version"] == "v4.0.0"
    assert git(repo, "tag", "--list", "run/*").count("\n") == 3  # four records
    status = subprocess.run(
        [sys.executable, "-m", "dvc", "status"],
        cwd=repo,
        env=pipeline_env(),
        capture_output=True,
        text=True,
    )
    assert "Data and pipelines are up to date" in status.stdout, status.stdout


def _md5_of(dvc_text: str, path: str = "data/raw") -> str:
    """The md5 of `path` in a .dvc file (its outs) or in dvc.lock (the validate stage's deps)."""
    doc = yaml.safe_load(dvc_text)
    entries = doc["stages"]["validate"]["deps"] if "stages" in doc else doc["outs"]
    return next(str(e["md5"]) for e in entries if e["path"] == path)


def test_an_ingest_during_a_retrain_waits_and_the_record_pins_what_ran(
    harness, trained_repo, tmp_path
):
    from prefect.settings import PREFECT_API_URL

    from retrain.config import load_params_at
    from retrain.data.simulate import simulate, write_batches

    repo = copy_repo(trained_repo, tmp_path / "repo")
    env = {
        **pipeline_env(),
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
    }
    longer = {"train.max_epochs": 30, "train.patience": 30}  # train and what follows rerun
    a = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, RETRAIN, str(repo), json.dumps(longer)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_reader, args=(a, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        # A batch lands while the retrain trains (its validate stage has read data/raw).
        _wait_for(lines, "Running stage 'train'", 400, seen)
        table = pd.read_csv(repo / "data" / "raw" / "telco_churn.csv")
        schema = load_params_at(repo).dataset
        batch = simulate(table, schema, n_batches=1, batch_size=300, seed=5, first_batch=9)
        batch = [b.dropna() for b in batch]  # this test is about the lock, not blank values
        (landed,) = write_batches(batch, load_params_at(repo).paths.landing, "late")
        ingest = subprocess.run(
            [sys.executable, "-m", "retrain.cli", "ingest"],
            cwd=repo,
            env=pipeline_env(),
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert a.wait(timeout=900) == 0
    finally:
        if a.poll() is None:
            os.killpg(a.pid, signal.SIGKILL)
            a.wait()
    reader.join(10)
    while not lines.empty():
        seen.append(lines.get())
    out = "".join(seen)
    result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    run_id = result["run_id"]

    # The ingest waited for the retrain, said so, for whom; then took the batch.
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    assert f"accepted  {landed.name}" in ingest.stdout
    waits = [ln for ln in ingest.stderr.splitlines() if "waiting for the project lock" in ln]
    assert waits and f"held by retrain (pid {a.pid}, run {run_id}, since " in waits[0]
    assert waits[0].startswith("ingest ingest-") and "waited 0s" in waits[0]  # ingest <its id>
    # The record pins the data its pipeline read: data.dvc == dvc.lock's data, no late batch.
    tag = f"run/{run_id}"
    rec = record_of(repo, run_id)
    pinned = _md5_of(git(repo, "show", f"{tag}:data.dvc"))
    assert pinned == _md5_of(git(repo, "show", f"{tag}:dvc.lock")) == rec["data"]["md5"]
    assert rec["data"]["batches"] == []
    # The batch is pinned now, after the retrain: the next retrain will read it.
    assert _md5_of((repo / "data.dvc").read_text()) != pinned
    assert any(p.name.startswith("late") for p in (repo / "data/raw/batches").iterdir())
