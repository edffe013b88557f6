"""The `retrain` command line: a thin layer over the package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from retrain import PARAMS_FILE
from retrain.errors import RetrainError
from retrain.files import write_json

if TYPE_CHECKING:
    from retrain.config import Params
    from retrain.project import Project

app = typer.Typer(help="Validated, tuned, reproducible retraining of a tabular classifier.")
data_app = typer.Typer(help="Obtain and check the pinned raw data.")
app.add_typer(data_app, name="data")

PARAMS = typer.Option(Path(PARAMS_FILE), "--params", help="The pipeline configuration.")


def _project(params: Path) -> Project:
    """The project the command works on: the folder holding `--params`, built once here."""
    from retrain.project import Project

    return Project.from_params_file(params)


def _fail(err: Exception, code: int = 1) -> None:
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(code)


@data_app.command("fetch")
def data_fetch(params: Path = PARAMS) -> None:
    """Restore the raw data pinned by data.dvc (DVC remote, else rebuilt offline) and check it."""
    from retrain.data.fetch import offline_rebuild
    from retrain.data.pin import ensure_pinned_data

    try:
        project = _project(params)
        cfg = project.params
        rebuild = offline_rebuild(cfg.dataset.name, cfg.paths.raw_data)
        typer.echo(ensure_pinned_data(project.root, cfg.paths.data_pin, rebuild))
    except (RetrainError, ValueError) as err:
        _fail(err)


stack_app = typer.Typer(help="The local Prefect stack: server, worker and deployments.")
app.add_typer(stack_app, name="stack")


@stack_app.command("up")
def stack_up(
    port: int = typer.Option(4200, help="Loopback port for the server and UI."),
    webhook: str = typer.Option(
        "",
        envvar="RETRAIN_WEBHOOK_URL",
        help="Webhook URL (Slack, Teams, ...) for the notifications of automations.yaml.",
    ),
) -> None:
    """Start the Prefect server (SQLite), a process worker and all deployments."""
    from retrain.orchestration.stack import up

    try:
        stack = up(Path.cwd(), port, webhook_url=webhook or None, say=typer.echo)
    except RetrainError as err:
        _fail(err)
        return
    typer.echo(f"Prefect UI: {stack.ui_url}  (API {stack.api_url})")
    typer.echo(f"Run reports: {stack.reports_url}  (the UI's links to plots, Data Docs, ...)")
    typer.echo(
        f"server pid {stack.server_pid}, worker pid {stack.worker_pid}, reports pid "
        f"{stack.reports_pid}; stop: retrain stack down"
    )
    if webhook:
        typer.echo("Notifications: automations.yaml -> the webhook (RETRAIN_WEBHOOK_URL)")
    typer.echo("To use `prefect` and the flows against this server in your shell, run:")
    typer.echo(f"  export PREFECT_API_URL={stack.api_url}")


@stack_app.command("down")
def stack_down() -> None:
    """Cancel the runs in flight, then stop everything that `stack up` started."""
    from retrain.orchestration.stack import down

    stack = down(Path.cwd(), say=typer.echo)
    typer.echo("no stack recorded" if stack is None else f"stopped {stack.ui_url}")


@app.command("init")
def init_cmd(
    table: Path = typer.Argument(..., help="The CSV or Parquet table to build the project on."),
    target: str = typer.Option(..., "--target", help="The column to predict."),
    positive_class: str | None = typer.Option(
        None,
        "--positive-class",
        help="Binary targets only: the value to predict (default: inferred).",
    ),
    id_column: str | None = typer.Option(
        None, "--id", help="The id column (default: detected by name, or none)."
    ),
    name: str | None = typer.Option(None, "--name", help="Dataset name (default: file name)."),
    keep: list[str] = typer.Option(
        [],
        "--keep",
        metavar="COL",
        help="Keep COL as a feature although it is flagged as a likely leak (repeatable).",
    ),
    task: str | None = typer.Option(
        None,
        "--task",
        help="binary, multiclass or regression (default: chosen from the target, with its "
        "reason).",
    ),
    params: Path = PARAMS,
) -> None:
    """Profile a table; write params.yaml's dataset keys and a draft suite; pin the table."""
    from retrain.init import run_init

    try:
        run_init(
            params.resolve().parent,
            table,
            target=target,
            positive_class=positive_class,
            id_column=id_column,
            name=name,
            keep=keep,
            task=task,
            params_file=params,
            say=typer.echo,
        )
    except (RetrainError, ValueError) as err:
        _fail(err)


@app.command("validate")
def validate(
    table: Path = typer.Argument(..., help="A CSV or Parquet file to check."),
    params: Path = PARAMS,
    report: Path | None = typer.Option(None, help="Also write the JSON summary here."),
) -> None:
    """Check one table against the suite and the PII guard; exit 1 on a blocking failure."""
    from retrain.config import load_params
    from retrain.data.io import read_table
    from retrain.validation.config_check import check_schema
    from retrain.validation.raw import validate_raw

    try:
        cfg = load_params(params)
        frame = read_table(table)
        # params.yaml against the table first (a table to score may lack the target).
        for warning in check_schema(cfg.dataset, [(table, frame)], params, require_target=False):
            typer.echo(f"warning: {warning}")
        result = validate_raw(frame, cfg, str(table), scoring=cfg.dataset.target not in frame)
    except (RetrainError, ValueError) as err:
        _fail(err)
        return
    if report:
        write_json(report, result.to_dict())
    typer.echo(result.headline())
    for finding in result.pii:
        typer.echo(f"  [personal data] {finding.message(str(table))}")
    for message in result.schema_messages():
        typer.echo(f"  [schema] {message}")
    for failure in result.failures:
        typer.echo(f"  [{failure.severity}] {failure.message(str(table))}")
    if not result.success:
        raise typer.Exit(1)


@app.command("simulate")
def simulate_cmd(
    out: Path | None = typer.Option(
        None, help="Folder to write the batches to (default: params.yaml's paths.landing)."
    ),
    batches: int = typer.Option(3, min=1, help="How many batches."),
    size: int = typer.Option(500, min=1, help="Rows per batch."),
    drift: str | None = typer.Option(
        None,
        help="shift (a numeric column x (1 + amount/100)), mix (a categorical level takes "
        "`amount` of rows), unseen (`amount` of rows get a new category); the target's, per "
        "task: flip (binary: `amount` of negative labels turn positive), relabel "
        "(multiclass: `amount` of rows get another class), prior (multiclass: class --value, "
        "default the rarest, takes `amount` of rows), target_shift (regression: + `amount` "
        "standard deviations), target_scale (regression: spread x `amount`).",
    ),
    column: str | None = typer.Option(
        None, help="The column to drift (default: picked from the schema, seeded)."
    ),
    amount: float | None = typer.Option(
        None,
        help="How much: percent for shift (25), a share for mix/unseen/flip/relabel/prior, "
        "standard deviations for target_shift (0.5), a factor for target_scale (1.5).",
    ),
    value: str | None = typer.Option(
        None, help="mix: the level; unseen: the new category; prior: the class."
    ),
    seed: int = typer.Option(0, help="Seed of the generated rows and the drift."),
    prefix: str = typer.Option("batch", help="File name prefix."),
    first_batch: int = typer.Option(
        1, min=1, help="Number of the first batch: ids and file names go on from a past call."
    ),
    params: Path = PARAMS,
) -> None:
    """Generate new batches like the configured table (no row copied), optionally drifted.

    Ids are fresh per batch number, so batches of separate calls never share ids as long
    as their numbers differ (`--first-batch 4` after a call that made 1-3).
    """
    from retrain.data.io import read_table
    from retrain.data.simulate import Drift, resolve, simulate, write_batches
    from retrain.validation.config_check import check_schema

    try:
        cfg = _project(params).params
        table = read_table(cfg.paths.raw_data)
        check_schema(cfg.dataset, [(cfg.paths.raw_data, table)], params)
        spec = Drift(drift, column, amount, value) if drift else None
        if spec is not None:
            spec = resolve(spec, table, cfg.dataset, seed)
            typer.echo(f"drift {spec.kind} on {spec.column!r}: amount {spec.amount:g}", err=True)
        frames = simulate(
            table,
            cfg.dataset,
            n_batches=batches,
            batch_size=size,
            seed=seed,
            drift=spec,
            first_batch=first_batch,
        )
    except (RetrainError, ValueError) as err:
        _fail(err)
        return
    for path in write_batches(frames, out or cfg.paths.landing, prefix, first=first_batch):
        typer.echo(str(path))


@app.command("ingest")
def ingest_cmd(params: Path = PARAMS) -> None:
    """Validate every landed batch (NAME with its NAME.done marker): version the good ones
    with DVC, quarantine the rest. Exit 1 when an entry was not accepted or a push failed."""
    from retrain.ingest import ingest_landing

    try:
        cfg = _project(params).params
        run = ingest_landing(cfg)
        for result in run.results:
            typer.echo(f"{result.status:9} {result.reason}")
        typer.echo(run.summary())
    except RetrainError as err:
        _fail(err)
        return
    if not run.ok:
        raise typer.Exit(1)


@app.command("predict")
def predict_cmd(
    file: Path = typer.Argument(..., help="The CSV/Parquet table to score."),
    out: Path | None = typer.Option(
        None, "--out", help="Output .parquet/.csv inside the project (default predictions/)."
    ),
    params: Path = PARAMS,
) -> None:
    """Score a table with the production (prod) model, as the predict flow does."""
    from retrain.predicting import predict_file

    try:
        root, cfg = _checkout(params)
        done = predict_file(root, cfg, file, out.resolve() if out else None)
    except (RetrainError, ValueError) as err:
        _fail(err)
        return
    typer.echo(f"scored {done.rows} rows of {file} with {done.model} -> {done.output}")


@app.command("deployment-run")
def deployment_run(
    name: str = typer.Argument(..., help="flow/deployment, e.g. retrain/retrain."),
    param: list[str] = typer.Option([], "--param", "-p", help="key=value (JSON values)."),
    timeout: float = typer.Option(3600, help="Seconds to wait for the run to finish."),
) -> None:
    """Run a deployment on the server (PREFECT_API_URL), wait, and print why it failed."""
    from retrain.orchestration import deployments

    try:
        done = deployments.run(name, deployments.parse_parameters(param), timeout)
    except RetrainError as err:
        _fail(err)
        return
    typer.echo(f"{name} run {done.run_name}: {done.state}")


@app.command("explain")
def explain(
    row_id: str = typer.Option(..., "--row-id", help="The id (dataset.id_column) of the row."),
    params: Path = PARAMS,
    top: int = typer.Option(10, min=1, help="How many columns to list."),
    as_json: bool = typer.Option(False, "--json", help="Print every column as JSON instead."),
) -> None:
    """Why the model scored one row as it did: attributions per original column."""
    from retrain.analysis.attributions import explain_row
    from retrain.config import load_params

    try:
        result = explain_row(load_params(params), row_id)
    except (RetrainError, ValueError) as err:
        _fail(err)
        return
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
        return
    typer.echo(
        f"{result.id_column} {result.row_id} ({result.split} split): score "
        f"{result.score:.4f}; baseline row ({result.baseline}) {result.baseline_score:.4f}"
    )
    width = max(len(c["column"]) for c in result.contributions[:top])
    for c in result.contributions[:top]:
        value = f"{c['value']}"
        typer.echo(f"  {c['column']:<{width}}  {value:<28} {c['attribution']:+.4f}")
    total = sum(c["attribution"] for c in result.contributions)
    unit, adds_up_to = result.unit()
    typer.echo(
        f"Attributions are {unit} (Integrated Gradients); all {len(result.contributions)} "
        f"add up to {total:+.4f}, {adds_up_to} "
        f"(completeness error {result.delta:+.1e})."
    )


@app.command("check-pr")
def check_pr(
    base: str = typer.Option(
        ..., "--base", help="The git ref to compare with, e.g. main or origin/main."
    ),
    out: Path | None = typer.Option(
        None,
        help="Folder for report.md, report.json, Data Docs, drift HTML (default: params.yaml's "
        "paths.pr_reports).",
    ),
    repro: bool = typer.Option(
        True, "--repro/--no-repro", help="Run `dvc repro` when the pipeline's inputs changed."
    ),
    fail_on_drift: bool = typer.Option(
        False, "--fail-on-drift", help="Make a tripped drift gate blocking (default: warning)."
    ),
) -> None:
    """Check the working tree against a base ref: validation, suite changes, drift against
    the base's data, params and metrics diff. Exit 0 passed, 1 blocked, 2 incomplete."""
    from retrain.infra.git import toplevel
    from retrain.prcheck.check import report_folder, run_check
    from retrain.prcheck.render import render_markdown

    try:
        root = toplevel(Path.cwd())
        folder = report_folder(root, out)
        check = run_check(root, base, folder, rerun=repro, fail_on_drift=fail_on_drift)
    except RetrainError as err:
        _fail(err, code=2)
        return
    markdown = render_markdown(check)
    (folder / "report.md").write_text(markdown)
    (folder / "report.json").write_text(
        json.dumps(check.to_dict(), indent=2, sort_keys=True, default=str) + "\n"
    )
    typer.echo(markdown, nl=False)
    raise typer.Exit(check.exit_code)


@app.command("results")
def results(
    params: Path = PARAMS,
    readme: Path | None = typer.Option(None, help="Rewrite this file's results block."),
) -> None:
    """Print the results table from the evaluate stage's metrics (optionally into README)."""
    from retrain.config import load_params
    from retrain.model_key import RENAME_NOTE, upgrade_metrics
    from retrain.report import results_table, update_readme
    from retrain.task import task_for

    try:
        cfg = load_params(params)
        if not cfg.paths.metrics.exists():
            raise RetrainError(f"{cfg.paths.metrics}: no metrics yet; run `dvc repro` first")
        metrics, renamed = upgrade_metrics(json.loads(cfg.paths.metrics.read_text()))
    except RetrainError as err:
        _fail(err)
        return
    if renamed:
        typer.echo(f"{cfg.paths.metrics}: {RENAME_NOTE}", err=True)
    task = task_for(cfg.dataset)
    typer.echo(results_table(metrics, cfg.model, task), nl=False)
    if readme and update_readme(readme, metrics, cfg.model, task):
        typer.echo(f"updated {readme}")


def _checkout(params: Path) -> tuple[Path, Params]:
    project = _project(params)
    return project.root, project.params


@app.command("runs")
def runs(
    params: Path = PARAMS,
    html: bool = typer.Option(False, "--html", help="Also rewrite the model history page."),
) -> None:
    """Every recorded retrain: time, reason, trigger, data and model versions, our metric and
    both baselines, the champion's on the same holdout, the gate's decision and why."""
    from retrain.history.page import write_page
    from retrain.history.table import history, text_table
    from retrain.registry import versions

    try:
        root, cfg = _checkout(params)
        found = history(root, cfg)
        prod = versions.in_stage(root, cfg.registry.model_name, cfg.registry.stage)
        page = write_page(root, cfg) if html else None
    except (RetrainError, ValueError) as err:
        _fail(err)
        return
    if not found:
        typer.echo("no recorded runs yet (a retrain writes one: tag run/<run-id>)")
    else:
        typer.echo(text_table(found, prod.version if prod else None), nl=False)
    if page is not None:
        typer.echo(f"model history page: {page}")


@app.command("compare")
def compare(
    run_a: str = typer.Argument(..., help="A recorded run (see `retrain runs`)."),
    run_b: str = typer.Argument(..., help="Another recorded run."),
    params: Path = PARAMS,
    html: Path | None = typer.Option(None, help="Also write the comparison page here."),
) -> None:
    """Two recorded runs side by side: metrics, params that differ, ROC/PR curves, slices."""
    from retrain.files import write_text
    from retrain.history import compare as cmp

    try:
        root, cfg = _checkout(params)
        a, b = cmp.load(root, cfg, run_a), cmp.load(root, cfg, run_b)
    except (RetrainError, ValueError) as err:
        _fail(err)
        return
    metric = cfg.registry.gate.metric
    typer.echo(cmp.text(a, b, metric), nl=False)
    if html is not None:
        typer.echo(f"comparison page: {write_text(html, cmp.render(a, b, metric))}")


@app.command("rollback")
def rollback(params: Path = PARAMS) -> None:
    """Return the serving stage (prod) to the version that held it before the current one."""
    from retrain.infra.git import identity_env
    from retrain.registry import lock, versions

    try:
        root, cfg = _checkout(params)
        reg = cfg.registry
        with lock.exclusive(
            cfg.paths.retrain_lock, "rollback", reg.lock_timeout_s, command="rollback"
        ):
            was, now = versions.rollback(root, reg.model_name, reg.stage, identity_env(root))
    except RetrainError as err:
        _fail(err)
        return
    typer.echo(f"{reg.model_name} {reg.stage}: {was} -> {now}")


canary_app = typer.Typer(help="Serve a registered version to a share of traffic, then decide.")
app.add_typer(canary_app, name="canary")


def _canary(params: Path, action: str, **kwargs: Any) -> dict[str, Any]:
    """Run registry.canary.<action> under the project lock (it writes registry tags)."""
    from retrain.infra.git import identity_env
    from retrain.registry import canary, lock

    root, cfg = _checkout(params)
    with lock.exclusive(
        cfg.paths.retrain_lock, f"canary-{action}", cfg.registry.lock_timeout_s, command="canary"
    ):
        done: dict[str, Any] = getattr(canary, action)(root, cfg, env=identity_env(root), **kwargs)
    return done


@canary_app.command("start")
def canary_start(
    version: str = typer.Argument(..., help="A registered version, e.g. v3.0.0."),
    share: float = typer.Option(0.1, help="Share of request keys it scores (0 < share <= 1)."),
    params: Path = PARAMS,
) -> None:
    """Put VERSION in the canary stage; `retrain serve` gives it SHARE of request keys."""
    try:
        done = _canary(params, "start", version=version, share=share)
    except RetrainError as err:
        _fail(err)
        return
    typer.echo(
        f"{done['model']} {version}: canary at {share:.0%} of request keys "
        f"(prod {done['prod_before']}); `retrain canary promote` or `abort` ends it"
    )


def _end_canary(params: Path, action: str, event: str) -> None:
    from retrain.orchestration import notify

    try:
        done = _canary(params, action)
    except RetrainError as err:
        _fail(err)
        return
    outcome = (
        f"{done['model']} canary {done['version']} {event}: prod "
        f"{done['prod_before']} -> {done['prod_after']}"
    )
    typer.echo(outcome)
    typer.echo(
        notify.announce(f"canary.{event}", done["model"], version=done["version"], outcome=outcome)
    )


@canary_app.command("promote")
def canary_promote(params: Path = PARAMS) -> None:
    """Move prod to the canary's version and end the canary (with its own notification)."""
    _end_canary(params, "promote", "promoted")


@canary_app.command("abort")
def canary_abort(params: Path = PARAMS) -> None:
    """End the canary: prod alone serves again (with its own notification)."""
    _end_canary(params, "abort", "aborted")


@app.command("reproduce")
def reproduce(
    run_id: str = typer.Argument(..., help="The run to replay (see `retrain runs`)."),
    params: Path = PARAMS,
    keep: bool = typer.Option(False, help="Keep the temporary clone and print its path."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Stream DVC's output."),
) -> None:
    """Replay a recorded run in a fresh clone; exit 1 if anything differs from the record."""
    from retrain.registry import reproduce as replay

    try:
        root, cfg = _checkout(params)
        result = replay.replay(
            root, cfg, run_id, keep=keep, on_line=typer.echo if verbose else None
        )
    except RetrainError as err:
        _fail(err)
        return
    typer.echo(replay.report(result))
    if keep:
        typer.echo(f"clone kept at {result.clone}")
    if not result.identical:
        raise typer.Exit(1)


@app.command("serve")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", help="Interface to bind (loopback by default)."),
    port: int = typer.Option(8000, help="TCP port (0: any free one, printed)."),
    params: Path = PARAMS,
) -> None:
    """Serve the registry's prod model over HTTP; follows promotions and rollbacks."""
    from retrain.serve.run import bind, exposure_warning, serve, url

    try:
        root, cfg = _checkout(params)
        sock = bind(host, port)  # before the "serving" line: a bad address is one error line
    except (RetrainError, ValueError) as err:
        _fail(err)
        return
    warning = exposure_warning(host)
    if warning:
        typer.echo(warning, err=True)
    typer.echo(f"serving {cfg.registry.model_name}@{cfg.registry.stage} on {url(sock)}")
    serve(root, cfg, sock)


if __name__ == "__main__":
    app()
