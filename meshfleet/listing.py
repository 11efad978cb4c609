"""The recent rollouts and rollbacks, each in the state ``status`` would say, newest first.

Temporal's execution status alone is not that state: a running rollout may be paused, halted or
at a gate, and a rollout of release 0.1.0 that failed or was cancelled ended in a Completed
execution. So each row asks the rollout itself: a running one its ``progress`` query (only when
a worker polls its task queue, so that a list never waits for one), a closed one its result or
failure, which Temporal answers without a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus

from meshfleet.contract.deletion import ROLLBACK_WORKFLOW, rollback_workflow_id
from meshfleet.contract.payloads import PROGRESS_QUERY, ROLLOUT_WORKFLOW, rollout_workflow_id
from meshfleet.models import RolloutProgress
from meshfleet.rollouts import ended_state, has_workers

Kind = Literal["rollout", "rollback"]

_KINDS: dict[str, Kind] = {ROLLOUT_WORKFLOW: "rollout", ROLLBACK_WORKFLOW: "rollback"}
# What a workflow id holds before the rollout id, as the one rule of each id writes it.
_PREFIXES = {"rollout": rollout_workflow_id(""), "rollback": rollback_workflow_id("")}

# A run that continued as new is not a rollout of its own: its latest run stands for it.
LIST_QUERY = (
    f"(WorkflowType = '{ROLLOUT_WORKFLOW}' OR WorkflowType = '{ROLLBACK_WORKFLOW}') "
    "AND ExecutionStatus != 'ContinuedAsNew'"
)

# How many rows ask Temporal (or a worker) at once: a list of hundreds must neither take a
# round trip per row in turn nor open hundreds of calls on one server.
CONCURRENCY = 8

QUERY_TIMEOUT_S = 5.0
"""How long a running row waits for its worker's answer before it says only ``running``."""

# Temporal's own words for an execution status, as its UI and `ExecutionStatus = "…"` spell them.
_EXECUTION_STATUS = {
    WorkflowExecutionStatus.RUNNING: "Running",
    WorkflowExecutionStatus.COMPLETED: "Completed",
    WorkflowExecutionStatus.FAILED: "Failed",
    WorkflowExecutionStatus.CANCELED: "Canceled",
    WorkflowExecutionStatus.TERMINATED: "Terminated",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "ContinuedAsNew",
    WorkflowExecutionStatus.TIMED_OUT: "TimedOut",
}


@dataclass(frozen=True)
class Listed:
    """One rollout or rollback as ``meshfleet list`` shows it."""

    kind: Kind
    rollout_id: str
    state: str
    """As ``status`` says it: ``paused``, ``awaiting_approval``, ``cancelled``, ``failed``…"""
    started: datetime | None
    """When its first run started (a rollout that continued as new started with its first)."""
    closed: datetime | None
    workflow_id: str
    execution_status: str
    """Temporal's: Running, Completed, Failed, Canceled, Terminated or TimedOut."""


async def list_rollouts(client: Client, limit: int = 20) -> list[Listed]:
    """The ``limit`` most recent rollouts and rollbacks, newest first."""
    executions = [e async for e in client.list_workflows(LIST_QUERY, limit=limit)]
    polled: dict[str, bool] = {}
    for queue in {e.task_queue for e in executions if e.status == WorkflowExecutionStatus.RUNNING}:
        polled[queue] = await has_workers(client, queue)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def row(execution: WorkflowExecution) -> Listed:
        async with gate:
            return await _listed(client, execution, polled.get(execution.task_queue, False))

    return list(await asyncio.gather(*(row(e) for e in executions)))


async def _listed(client: Client, execution: WorkflowExecution, polled: bool) -> Listed:
    kind = _KINDS.get(execution.workflow_type, "rollout")
    status = execution.status
    handle = client.get_workflow_handle(execution.id, result_type=RolloutProgress)
    if status == WorkflowExecutionStatus.RUNNING:
        state = "running"
        if polled:
            # A worker that is slow to answer leaves the row as Temporal sees it.
            with contextlib.suppress(Exception):
                progress = await asyncio.wait_for(
                    handle.query(PROGRESS_QUERY, result_type=RolloutProgress), QUERY_TIMEOUT_S
                )
                state = progress.state.value
    else:
        state = await ended_state(handle, status)
    return Listed(
        kind=kind,
        rollout_id=execution.id.removeprefix(_PREFIXES[kind]),
        state=state,
        started=await _first_start(client, execution),
        closed=execution.close_time,
        workflow_id=execution.id,
        execution_status=_EXECUTION_STATUS.get(status, "Unknown") if status else "Unknown",
    )


async def _first_start(client: Client, execution: WorkflowExecution) -> datetime | None:
    first = execution.raw_info.first_run_id
    if not first or first == execution.run_id:
        return execution.start_time
    with contextlib.suppress(Exception):  # the first run is past retention: its latest start
        return (await client.get_workflow_handle(execution.id, run_id=first).describe()).start_time
    return execution.start_time
