"""How runs read in the UI: stage logs, trial lines, outcome names (pure functions)."""

from __future__ import annotations

import optuna

from retrain.orchestration import runview
from retrain.stages.tune import trial_line

DVC_TAIL = [
    "Running stage 'evaluate':",
    "> python -m retrain.stages.evaluate",
    "| model | roc_auc |",
    "|---|---:|",
    "| tabm | 0.8412 |",
    "evaluate: 3.1 s",
    "Updating lock file 'dvc.lock'",
    "",
    "To track the changes with git, run:",
    "",
    "\tgit add dvc.lock",
    "",
    "To enable auto staging, run:",
    "",
    "\tdvc config core.autostage true",
    "Use `dvc push` to send your updates to remote storage.",
]


def test_stage_log_drops_dvc_advice_and_logs_a_table_once():
    logged: list[str] = []
    log = runview.StageLog(logged.append)
    for line in DVC_TAIL:
        if line.strip():  # run_dvc hands over non-blank lines only
            log(line)
    log.flush()
    assert logged == [
        "Running stage 'evaluate':",
        "> python -m retrain.stages.evaluate",
        "\n| model | roc_auc |\n|---|---:|\n| tabm | 0.8412 |",
        "evaluate: 3.1 s",
        "Updating lock file 'dvc.lock'",
    ]


def test_tune_trial_lines_feed_the_progress():
    study = optuna.create_study(direction="maximize")
    seen: list[tuple[int, int]] = []
    logged: list[str] = []
    log = runview.StageLog(logged.append, on_trial=lambda n, of: seen.append((n, of)))

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        trial.report(x, 0)
        if trial.number == 2:
            raise optuna.TrialPruned()
        return [0.80, 0.85, 0.0, 0.83][trial.number]

    study.optimize(objective, n_trials=4, callbacks=[lambda s, t: log(trial_line(s, t, 4))])
    assert logged == [
        "tune: trial 1 of 4: 0.8000 (best 0.8000, trial 1)",
        "tune: trial 2 of 4: 0.8500 (best 0.8500, trial 2)",
        "tune: trial 3 of 4: pruned after fold 1 (best 0.8500, trial 2)",
        "tune: trial 4 of 4: 0.8300 (best 0.8500, trial 2)",
    ]
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_gate_outcome_names_the_check_that_failed():
    name, message, warn = runview.gate_outcome(
        "rejected",
        [
            "roc_auc better by +0.0086 (margin 0.002)",
            "ECE 0.0612 above the bound 0.05 (served scores, uncalibrated)",
        ],
    )
    assert name == "Not promoted: ECE" and warn
    assert message == "Not promoted: ECE 0.0612 above the bound 0.05 (served scores, uncalibrated)"
    name, _, warn = runview.gate_outcome(
        "rejected", ["roc_auc changes by -0.0010, short of the margin 0.002", "ECE 0.01 within"]
    )
    assert name == "Not promoted: roc_auc" and warn
    assert runview.gate_outcome("first", ["no model in production"])[:1] == ("Promoted",)


def test_gate_outcome_names_the_calibration_check_of_each_task():
    # The gate's reasons for a multiclass and a regression challenger (retrain.registry.gate).
    name, message, warn = runview.gate_outcome(
        "rejected",
        [
            "log_loss better by +0.0120 (margin 0.002)",
            "top-class ECE 0.0712 above the bound 0.05 (served scores, uncalibrated)",
        ],
    )
    assert name == "Not promoted: ECE" and warn and "top-class ECE 0.0712" in message
    coverage = (
        "interval coverage 0.8410 of the 90% interval on the holdout misses its level by "
        "0.0590, more than registry.gate.coverage_tolerance 0.02"
    )
    name, message, warn = runview.gate_outcome(
        "rejected", ["rmse better by +0.4100 (margin 0.002)", coverage]
    )
    assert name == "Not promoted: interval coverage" and warn
    assert message == f"Not promoted: {coverage}"  # not the rmse line, which passed


def test_monitor_outcome_names_every_outcome():
    records = [
        {"source": "land/a-0001.csv", "status": "accepted", "drift": {"tripped": False}},
        {
            "source": "land/b-0001.csv",
            "status": "accepted",
            "drift": {"tripped": True},
            "retrain_run": "1234",
        },
        {"source": "land/c.csv", "status": "rejected", "reason": "missing ['tenure']"},
        {
            "source": "predictions/online",
            "status": "traffic",
            "batch": "traffic until T",
            "drift": {"tripped": True},
        },
    ]
    retrain = {"flow_run_id": "1234", "name": "icy-jackal", "state": "Scheduled"}
    name, message, warn, tags = runview.monitor_outcome(records, {**retrain, "started": True})
    assert name == "Batch rejected + Drift: retrain started" and warn
    assert message == (
        "2 batch(es) accepted: a-0001.csv, b-0001.csv; traffic checked: traffic until T; "
        "1 batch(es) rejected: c.csv (missing ['tenure']); "
        "drift gate tripped on b-0001.csv, traffic until T; "
        "retrain started: icy-jackal (1234)"
    )
    assert tags == ["batch-rejected", "drift-tripped", "retrain-started"]
    # A drift retrain from an earlier monitor run still to run: none started, that one named.
    name, message, _, tags = runview.monitor_outcome(records[1:2], {**retrain, "started": False})
    assert name == "Drift: retrain pending" and tags[-1] == "retrain-pending"
    assert message.endswith(
        "no new retrain: icy-jackal (1234), started by an earlier "
        "monitor run, is still Scheduled and will read these batches"
    )
    assert runview.monitor_outcome(records[1:2])[:2] == (
        "Drift",
        "1 batch(es) accepted: b-0001.csv; drift gate tripped on b-0001.csv; "
        "no retrain started (trigger off)",
    )
    assert runview.monitor_outcome(records[:1])[:3] == (
        "No drift",
        "1 batch(es) accepted: a-0001.csv; no drift",
        False,
    )
    assert runview.monitor_outcome([])[:2] == ("No batch", "no new batch in the landing folder")
    assert runview.monitor_run_name(["a-0001.csv", "b.csv", "c.csv"]) == "monitor-a-0001+2"
    assert runview.monitor_run_name([]) == "monitor-no-batch"
