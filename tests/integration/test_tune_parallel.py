"""Parallel tuning on real engines and storages: the tune stage as DVC runs it, with
`tune.workers: 2`, trials on `prefect task serve` workers (a real Prefect server) or on
prefect-dask's LocalCluster, the study in a journal file or a private PostgreSQL.

The batched ask/tell study must not depend on where or in which order trials ran: every run
here must give the journal run's trials, value for value, and a worker killed with SIGKILL
must only add a FAIL row (its trial retried), never change the study.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrain.stages import prepare
from tests.conftest import REPO, copy_repo, params_in, pipeline_env
from tests.servers import postgres, postgres_missing, prefect_server

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.engines]

# Two folds of 1,000 rows: a worker evaluates a whole cross-validated trial (both folds).
TINY = {"n_trials": 4, "max_epochs": 3, "patience": 2, "max_rows": 1000, "workers": 2, "folds": 2}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, small_params_raw) -> dict[str, Any]:
    """Prepared splits shared by every run; the params as JSON with absolute paths."""
    root = tmp_path_factory.mktemp("tune-parallel")
    raw = json.loads(json.dumps(small_params_raw))
    raw["tune"].update(TINY)
    params = params_in(root, raw)
    prepare.run(params)
    return params.model_dump(mode="json")


@pytest.fixture(scope="module")
def prefect_env(tmp_path_factory):
    with prefect_server(tmp_path_factory.mktemp("prefect")) as env:
        yield env


def run_tune(
    base: dict[str, Any], out: Path, env: dict[str, str], **tune: Any
) -> subprocess.Popen[str]:
    """Start `python -m retrain.stages.tune` on `base` params with `tune` overrides, writing
    its outputs under `out`."""
    raw = json.loads(json.dumps(base))
    raw["tune"].update(tune)
    out.mkdir(parents=True, exist_ok=True)
    raw["paths"]["best_params"] = str(out / "best_params.json")
    raw["paths"]["tune_trials"] = str(out / "trials.csv")
    (out / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return subprocess.Popen(
        [sys.executable, "-m", "retrain.stages.tune", "--params", str(out / "params.yaml")],
        cwd=out,
        env={**pipeline_env(), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen[str], out: Path) -> dict[str, Any]:
    log, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, log[-4000:]
    best = json.loads((out / "best_params.json").read_text())
    rows = list(csv.DictReader(io.StringIO((out / "trials.csv").read_text())))
    return {"best": best, "rows": rows, "log": log}


def stored_states(journal: Path, study_name: str) -> dict[str, int]:
    """How many trials of each state the study's journal file holds, read back by Optuna."""
    import optuna

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    study = optuna.load_study(study_name=study_name, storage=storage)
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


def results(rows: list[dict[str, str]]) -> list[tuple[Any, ...]]:
    """Finished trials in order, without their numbers (a retry shifts later numbers)."""
    return [
        tuple(v for k, v in row.items() if k != "trial")
        for row in rows
        if row["state"] in ("COMPLETE", "PRUNED")
    ]


@pytest.fixture(scope="module")
def journal_run(prepared, prefect_env, tmp_path_factory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("journal")
    got = finish(
        run_tune(prepared, out, prefect_env, storage=f"journal:{out / 'study.journal'}"), out
    )
    return {**got, "journal": out / "study.journal"}


def test_two_prefect_workers_on_a_journal_file(journal_run, prepared):
    best, rows = journal_run["best"], journal_run["rows"]
    assert best["tuning"] == {
        "mode": "batched",
        "workers": 2,
        "batch": 2,
        "engine": "prefect",
        "storage": "journal",
    }
    assert len(results(rows)) == TINY["n_trials"] == best["n_trials"]
    # Cross-validated on the workers: every finished trial has its first fold's score, a
    # complete one both, and the best value is the mean of the best trial's folds.
    assert best["cv_folds"] == 2 and len(best["fold_scores"]) == 2
    assert best["best_value"] == pytest.approx(sum(best["fold_scores"]) / 2, abs=1e-6)
    assert all(row["fold_1"] for row in rows if row["state"] in ("COMPLETE", "PRUNED"))
    assert all(row["fold_2"] for row in rows if row["state"] == "COMPLETE")
    # One budget for both workers: the storage holds n_trials trials, not n_trials each.
    states = stored_states(journal_run["journal"], prepared["tune"]["study_name"])
    assert sum(states.values()) == TINY["n_trials"], states
    assert set(states) <= {"COMPLETE", "PRUNED"}, states
    # Pruning ran (small_overrides: one startup trial, two warm-up epochs) and compared with
    # earlier batches only: the same prunes in every other run below.
    assert "batched ask/tell, 2 trials a batch on 2 prefect workers" in journal_run["log"]


@pytest.mark.skipif(postgres_missing() is not None, reason=str(postgres_missing()))
def test_postgresql_storage_gives_the_same_study(journal_run, prepared, prefect_env, tmp_path):
    with postgres() as (host, port):
        url = f"postgresql+psycopg2://retrain@{host}:{port}/retrain"
        got = finish(run_tune(prepared, tmp_path, prefect_env, storage=url), tmp_path)
    assert got["best"]["tuning"]["storage"] == "postgresql+psycopg2"
    assert got["rows"] == journal_run["rows"]
    assert got["best"]["params"] == journal_run["best"]["params"]
    assert got["best"]["best_value"] == journal_run["best"]["best_value"]


@pytest.mark.extended
def test_workers_beyond_the_batch_share_one_budget(journal_run, prepared, prefect_env, tmp_path):
    """Three workers, batches of two: the third waits; the budget is not per worker, and the
    study is the two-worker one (the batch, not the worker count, defines it)."""
    journal = tmp_path / "study.journal"
    got = finish(
        run_tune(
            prepared, tmp_path, prefect_env, workers=3, batch=2, storage=f"journal:{journal}"
        ),
        tmp_path,
    )
    assert got["best"]["tuning"]["workers"] == 3 and got["best"]["tuning"]["batch"] == 2
    states = stored_states(journal, prepared["tune"]["study_name"])
    assert sum(states.values()) == TINY["n_trials"] and set(states) <= {"COMPLETE", "PRUNED"}
    assert got["rows"] == journal_run["rows"]
    assert got["best"]["params"] == journal_run["best"]["params"]


@pytest.mark.extended
def test_dask_local_cluster_replays_the_study(journal_run, prepared, prefect_env, tmp_path):
    got = finish(
        run_tune(
            prepared,
            tmp_path,
            prefect_env,
            engine="dask",
            storage=f"journal:{tmp_path / 'study.journal'}",
        ),
        tmp_path,
    )
    assert got["best"]["tuning"]["engine"] == "dask"
    assert got["rows"] == journal_run["rows"]
    assert got["best"]["params"] == journal_run["best"]["params"]


@pytest.mark.extended
def test_a_sigkilled_worker_s_trial_is_failed_retried_and_the_study_completes(
    journal_run, prepared, prefect_env, tmp_path
):
    import optuna

    from retrain.tuning.storage import heartbeat_attr
    from retrain.tuning.worker import outcome_attr, worker_attr

    journal = tmp_path / "study.journal"
    proc = run_tune(
        prepared,
        tmp_path,
        prefect_env,
        storage=f"journal:{journal}",
        heartbeat_s=1,
        grace_s=4,
    )
    killed: list[tuple[int, int]] = []

    def kill_one_worker_mid_trial() -> None:
        # A fast machine trains a tiny trial's fold in about a second, so waiting for a
        # fold's score missed every trial in CI: kill a worker as soon as it holds a trial
        # and beats for it (the beat is what the coordinator watches), before its outcome.
        deadline = time.monotonic() + 600
        while not killed and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            if not journal.exists():
                continue
            storage = optuna.storages.JournalStorage(
                optuna.storages.journal.JournalFileBackend(str(journal))
            )
            try:
                study = optuna.load_study(
                    study_name=prepared["tune"]["study_name"], storage=storage
                )
            except KeyError:
                continue
            for trial in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
                where = trial.system_attrs.get(worker_attr(trial._trial_id))
                finished = outcome_attr(trial._trial_id) in trial.system_attrs
                beating = heartbeat_attr(trial._trial_id) in trial.system_attrs
                if where and beating and not finished:  # mid-trial
                    pid = int(where.rsplit(":", 1)[1])
                    os.kill(pid, signal.SIGKILL)
                    killed.append((trial.number, pid))
                    return

    killer = threading.Thread(target=kill_one_worker_mid_trial, daemon=True)
    killer.start()
    got = finish(proc, tmp_path)
    killer.join(timeout=5)
    assert killed, "no worker was caught mid-trial"
    number, _ = killed[0]
    states = {row["trial"]: row["state"] for row in got["rows"]}
    assert states[str(number)] == "FAIL"
    assert list(states.values()).count("FAIL") == 1
    # The retry took the failed trial's place in the budget, it did not add to it.
    stored = stored_states(journal, prepared["tune"]["study_name"])
    assert stored == {
        "FAIL": 1,
        **{s: n for s, n in stored.items() if s in ("COMPLETE", "PRUNED")},
    }, stored
    assert stored.get("COMPLETE", 0) + stored.get("PRUNED", 0) == TINY["n_trials"]
    assert f"trial {number}'s worker" in got["log"]
    # The retry re-ran the same parameters under a later number: the study is the undisturbed
    # one, its trials in another order.
    assert sorted(results(got["rows"])) == sorted(results(journal_run["rows"]))
    assert got["best"]["params"] == journal_run["best"]["params"]
    assert got["best"]["best_value"] == journal_run["best"]["best_value"]


@pytest.mark.extended
def test_a_parallel_retrain_replays_bit_for_bit_from_its_record(
    prefect_harness, trained_repo, tmp_path, monkeypatch
):
    """A retrain whose study ran on two workers (batched ask/tell) records that mode, and
    `retrain reproduce` re-runs it so in a fresh clone: the same trials (trials.csv's hash),
    the same best parameters and every artifact bit for bit."""
    from prefect.flows import load_flow_from_entrypoint
    from prefect.settings import PREFECT_API_URL

    repo = copy_repo(trained_repo, tmp_path / "repo")
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["tune"].update(workers=2, n_trials=3)  # an odd budget: the last batch has one trial
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "commit", "-qam", "tune on two workers"], cwd=repo, check=True)
    # The flow runs in this process on the session's Prefect server; the tune stage under
    # `dvc repro` (a subprocess) sends its trials to task workers through the same one.
    url = str(PREFECT_API_URL.value())
    monkeypatch.setenv("PREFECT_API_URL", url)

    retrain = load_flow_from_entrypoint(f"{REPO}/flows/retraining.py:retraining_flow")
    state = retrain(repo=str(repo), reason="manual", return_state=True)
    assert state.is_completed(), state.message
    run_id = state.result()["run_id"]
    record = json.loads(
        subprocess.run(
            ["git", "show", f"run/{run_id}:registry/run.json"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert record["tuning"] == {
        "mode": "batched",
        "workers": 2,
        "batch": 2,
        "engine": "prefect",
        "storage": "journal",
    }
    assert record["tuned_params"]["n_trials"] == 3
    stored = stored_states(repo / "models" / "tune" / "optuna.journal", raw["tune"]["study_name"])
    assert sum(stored.values()) == 3 and set(stored) <= {"COMPLETE", "PRUNED"}, stored

    out = subprocess.run(
        [sys.executable, "-m", "retrain.cli", "reproduce", run_id],
        cwd=repo,
        env={**pipeline_env(), "PREFECT_API_URL": url},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "identical: every artifact, metric and tuned parameter" in out.stdout, out.stdout
    lines = {ln.split()[0]: ln.split()[1:] for ln in out.stdout.splitlines() if ln.strip()}
    trials_md5 = record["artifacts"]["models/tune/trials.csv"][:12]
    assert lines["models/tune/trials.csv"] == [trials_md5, trials_md5, "same"]
    assert lines["tuning.mode"] == ["batched", "batched", "same"]
    assert lines["tuning.workers"] == ["2", "2", "same"]
