"""Start a deployment's flow run, wait for it, and say in one line why it failed.

`prefect deployment run --watch` ends a failed run with "Flow run finished in state
'Failed'." only; the reason is in the run's state message (the exception, for a flow that
raised) or its error logs (for a crashed process). `retrain deployment-run` prints it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from retrain.errors import RetrainError


class DeploymentRunFailed(RetrainError):
    """The flow run ended in a state other than Completed; the message is the reason."""


@dataclass(frozen=True)
class Finished:
    name: str
    flow_run_id: str
    state: str
    result: str
    run_name: str  # the flow run's name, as the UI lists it (e.g. retrain-manual-<run id>)


def parse_parameters(pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs; a value that is JSON (numbers, objects, true) is read as JSON.

    Raises:
        RetrainError: a pair has no '='.
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RetrainError(f"parameter {pair!r}: expected key=value")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def one_line(text: str | None) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


async def _reason(client: Any, flow_run: Any) -> str:
    """The state message's last line, else the flow run's last error log line."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel

    message = one_line(flow_run.state.message if flow_run.state else None)
    if "exception" in message.lower() or "error" in message.lower():
        return message
    logs = await client.read_logs(
        log_filter=LogFilter(
            flow_run_id=LogFilterFlowRunId(any_=[flow_run.id]),
            level=LogFilterLevel(ge_=40),
        )
    )
    found = [one_line(log.message) for log in logs if one_line(log.message)]
    return found[-1] if found else message or "no reason recorded"


async def _check_parameters(name: str, parameters: dict[str, Any]) -> None:
    """Refuse, before any run is created, a deployment that does not exist and a parameter
    its flow does not take (the server would schedule a run that then fails, or wait
    forever for a worker). Values are the server's to check (its JSON schema, `_detail`).

    Raises:
        DeploymentRunFailed: one line naming the deployment or the parameter, and what is
            allowed.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    if name.count("/") != 1 or not all(name.split("/")):
        raise DeploymentRunFailed(f"deployment {name!r}: expected FLOW/DEPLOYMENT")
    async with get_client() as client:
        try:
            deployment = await client.read_deployment_by_name(name)
        except ObjectNotFound:
            known = await _deployments(client)
            raise DeploymentRunFailed(
                f"deployment {name}: not found on {client.api_url}; known: {known}"
            ) from None
    allowed = sorted((deployment.parameter_openapi_schema or {}).get("properties") or {})
    unknown = sorted(set(parameters) - set(allowed))
    if unknown:
        raise DeploymentRunFailed(
            f"{name}: unknown parameter {unknown[0]!r}; its parameters: {allowed}"
        )


async def _deployments(client: Any) -> list[str]:
    """Every deployment on the server, as FLOW/DEPLOYMENT."""
    flows = {f.id: f.name for f in await client.read_flows()}
    return sorted(f"{flows.get(d.flow_id, '?')}/{d.name}" for d in await client.read_deployments())


def _detail(err: Exception) -> str:
    """The server's one-line reason for refusing a run (e.g. "Validation failed for field
    'reason'. Failure reason: 'bogus' is not one of ['schedule', 'drift', 'manual']")."""
    response = getattr(err, "response", None)
    try:
        detail = str(response.json()["detail"]) if response is not None else str(err)
    except (ValueError, KeyError, TypeError):
        detail = str(err)
    detail = detail.removeprefix("Error creating flow run: ")
    detail = detail.replace("Validation failed for field ", "parameter ")
    return one_line(detail.replace(". Failure reason: ", ": "))


def run(name: str, parameters: dict[str, Any], timeout_s: float) -> Finished:
    """Run deployment `name` (flow/deployment), wait up to `timeout_s`, return its outcome.

    Raises:
        DeploymentRunFailed: the run did not complete; the message is one line with the
            run's name, its state and the reason.
    """
    import asyncio

    import httpx
    from prefect.client.orchestration import get_client
    from prefect.deployments.flow_runs import arun_deployment
    from prefect.exceptions import PrefectHTTPStatusError

    async def outcome() -> tuple[Any, str]:
        await _check_parameters(name, parameters)
        try:
            flow_run = await arun_deployment(
                name, parameters=parameters, timeout=timeout_s, poll_interval=2, as_subflow=False
            )
        except PrefectHTTPStatusError as err:  # the server's parameter validation said no
            raise DeploymentRunFailed(f"{name}: {_detail(err)}") from None
        async with get_client() as client:
            fresh = await client.read_flow_run(flow_run.id)
            failed = fresh.state is None or not fresh.state.is_completed()
            return fresh, (await _reason(client, fresh) if failed else "")

    try:
        fresh, reason = asyncio.run(outcome())
    except httpx.TransportError as err:  # no server there, or it went away
        raise DeploymentRunFailed(f"{name}: the Prefect API did not answer ({err})") from None
    state = fresh.state.name if fresh.state else "unknown"
    if fresh.state is None or not fresh.state.is_completed():
        if fresh.state is not None and not fresh.state.is_final():
            reason = f"not finished after {timeout_s:g}s"
        raise DeploymentRunFailed(f"{name} run {fresh.name!r} {state}: {reason}")
    return Finished(name, str(fresh.id), state, one_line(fresh.state.message), fresh.name)


# A run in one of these states has not read the project's data yet, or is reading it now.
ACTIVE = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED")


@dataclass(frozen=True)
class Started:
    """A flow run of a deployment: started now, or found still active."""

    flow_run_id: str
    name: str
    state: str


def active_runs(name: str, reason: str) -> list[Started]:
    """The runs of deployment `name` (flow/deployment) started with parameter `reason` that
    are scheduled, pending, running or paused: oldest first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(name)
        found = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id]),
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType(s) for s in ACTIVE])
                ),
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
        )
    return [
        Started(str(r.id), r.name, (r.state.name if r.state else None) or "unknown")
        for r in found
        if r.parameters.get("reason") == reason
    ]


def start(name: str, parameters: dict[str, Any], tags: list[str]) -> Started:
    """Start a run of deployment `name` without waiting for it (it is a run of its own)."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    # Called from sync code, run_deployment returns the run (its type admits a coroutine).
    run = cast(
        FlowRun,
        run_deployment(name, parameters=parameters, timeout=0, as_subflow=False, tags=tags),
    )
    return Started(str(run.id), run.name, (run.state.name if run.state else None) or "Scheduled")
