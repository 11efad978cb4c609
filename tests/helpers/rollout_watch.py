"""Watching a rollout from outside, as a test waits on it: its progress, its runs and what each
began with, and the moment it rests.

Each reads what Temporal itself answers (the ``progress`` query, visibility, the history), so a
test waits on something the rollout did, never on a stretch of wall-clock time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from meshfleet.contract.payloads import PROGRESS_QUERY, RolloutInput
from meshfleet.models import RolloutProgress, RolloutState
from tests.helpers.eventually import NotYetError, eventually_value

WAIT_S = 30
"""Limit of each wait on a workflow: generous for a loaded machine, reached only on a bug."""


def state_is(state: RolloutState) -> Callable[[RolloutProgress], bool]:
    """The progress ``progress_reaches`` waits for when only the state matters."""
    return lambda p: p.state == state


async def progress_reaches(
    handle: WorkflowHandle[Any, Any],
    accept: Callable[[RolloutProgress], bool],
    what: str,
    *,
    limit_s: float = WAIT_S,
) -> RolloutProgress:
    """The rollout's ``progress`` once ``accept`` takes it, polled through continue-as-new.

    ``handle`` names the workflow without a run (``rollouts.rollout_handle`` or the handle a
    start returned), so each poll asks whichever run is the latest.
    """

    async def progress() -> RolloutProgress:
        answer: RolloutProgress = await handle.query(PROGRESS_QUERY, result_type=RolloutProgress)
        return answer

    # Not yet started (a start by another process), or before its first workflow task, a
    # rollout answers no query: not yet. A query that keeps failing is named at the limit.
    return await eventually_value(
        progress,
        accept,
        limit_s,
        f"{handle.id}: {what}",
        retry_on=(RPCError, WorkflowQueryFailedError),
    )


async def runs(
    client: Client, workflow_id: str, *, at_least: int = 0, limit_s: float = WAIT_S
) -> int:
    """How many runs Temporal lists under ``workflow_id``: every execution of that id, each
    continue-as-new adding one; 0 if it never started.

    Visibility trails history by a moment, so the count is read once the list holds the latest
    run (as ``describe`` names it) and at least ``at_least`` runs.
    """
    try:
        latest: str | None = (await client.get_workflow_handle(workflow_id).describe()).run_id
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        latest = None
    query = f'WorkflowId = "{workflow_id}"'

    async def listed() -> list[str]:
        return [w.run_id async for w in client.list_workflows(query)]

    def complete(run_ids: list[str]) -> bool:
        return (latest is None or latest in run_ids) and len(run_ids) >= at_least

    found = await eventually_value(
        listed, complete, limit_s, f"{at_least} or more runs of {workflow_id} listed", interval=0.1
    )
    return len(found)


@dataclass(frozen=True)
class RunStart:
    """What one run of a rollout began with."""

    run_id: str
    input: RolloutInput
    """Its input; after the first run, the ``carry`` the run before handed over."""
    continued_from: str | None
    """The run that continued as new into this one; None for the first."""


async def run_start(client: Client, workflow_id: str, run_id: str | None = None) -> RunStart:
    """How run ``run_id`` of ``workflow_id`` (the latest one by default) began."""
    if run_id is None:
        run_id = (await client.get_workflow_handle(workflow_id).describe()).run_id
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    (inp,) = await client.data_converter.decode(started.input.payloads, [RolloutInput])
    assert isinstance(inp, RolloutInput)
    return RunStart(run_id, inp, started.continued_execution_run_id or None)


async def run_chain(client: Client, workflow_id: str) -> list[RunStart]:
    """Every run of the latest execution of ``workflow_id``, oldest first, walked back from the
    latest through continue-as-new (history, so nothing trails behind)."""
    chain = [await run_start(client, workflow_id)]
    while chain[-1].continued_from is not None:
        chain.append(await run_start(client, workflow_id, chain[-1].continued_from))
    return chain[::-1]


@dataclass(frozen=True)
class Rest:
    """A run that has nothing left to do by itself, as its history stood then."""

    history: WorkflowHistory

    def count(self, event_type: EventType.ValueType) -> int:
        """Events of ``event_type`` in the run's history."""
        return sum(e.event_type == event_type for e in self.history.events)


async def at_rest(client: Client, workflow_id: str, *, limit_s: float = WAIT_S) -> Rest:
    """The latest run of ``workflow_id`` once it runs with no workflow task, activity or child
    pending.

    A workflow acts only in its workflow tasks, and every command of a task (a child started,
    an activity scheduled) is in the history the moment the task completes. A run at rest has
    done all it decided to do: it acts again only on a timer firing, a signal, an update or a
    cancel. What it did not start by then, it did not start.
    """

    async def rest() -> Rest:
        desc = await client.get_workflow_handle(workflow_id).describe()
        if desc.status != WorkflowExecutionStatus.RUNNING:
            # Ended, it will never rest: say so now rather than at the time limit.
            raise AssertionError(f"{workflow_id} is {desc.status}, not at rest")
        raw = desc.raw_description
        busy = []
        if raw.HasField("pending_workflow_task"):
            busy.append("a workflow task")
        busy += [f"activity {a.activity_type.name}" for a in raw.pending_activities]
        busy += [f"child {c.workflow_id}" for c in raw.pending_children]
        if busy:
            raise NotYetError(", ".join(busy) + " pending")
        run = client.get_workflow_handle(workflow_id, run_id=desc.run_id)
        history = await run.fetch_history()
        if len(history.events) != raw.workflow_execution_info.history_length:
            raise NotYetError("the history moved on while it was read")
        return Rest(history)

    return await eventually_value(rest, bool, limit_s, f"{workflow_id} at rest", interval=0.1)
