"""Drift schedules through a Temporal client: saved, listed, deleted (CLI, tests, bench).

A drift schedule ``drift/NAME`` runs ``DriftCheckWorkflow`` every so often over a manifest's
targets. Its action's input names where the targets are stored, never the targets themselves:
they are kept in page workflows that stay Running (``drift/NAME/targets/{digest12}/{n}``), since
a schedule outlives the namespace's retention of any closed workflow. Saving a changed manifest
stores its pages under the new digest first, then points the schedule at them, then terminates
the old pages: at every moment the schedule names pages that exist.

Temporal keeps a schedule's memo as it was created (it refuses to update it), so the memo
records the manifest the schedule was created from, and every check's own memo (part of the
schedule's action, updated with it) the manifest it checks now.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowExecutionStatus,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from meshfleet.asm.rules import Rule
from meshfleet.contract.drift import (
    DRIFT_CHECK_WORKFLOW,
    DRIFT_PAGE_SIZE,
    DRIFT_PAGE_WORKFLOW,
    DriftCheckInput,
    DriftPage,
    DriftPages,
    DriftReport,
    drift_check_workflow_id,
    drift_pages_prefix,
    drift_schedule_id,
    short_digest,
)
from meshfleet.manifest.durations import format_duration
from meshfleet.models import MeshTarget

SCHEDULE_PREFIX = "drift/"
MIN_EVERY_S = 60.0
"""The shortest interval between two checks: a check lists every project and region."""
CATCHUP_WINDOW = timedelta(minutes=1)
"""A check missed while Temporal was away runs if it is this late at most; an older one is
not worth catching up, the next is due anyway."""
CHECK_TIMEOUT = timedelta(hours=2)
"""A check that has not ended by then is ended: with overlap SKIP, a stuck check would keep
every later one from running."""
MEMO_SOURCE = "source"
MEMO_EVERY = "every"
STARTS_IN_PARALLEL = 16


DRIFT_NAME = Rule(
    "name",
    re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}"),
    "is not a drift schedule name: 1-100 letters, digits, '.', '_', ':' or '-', starting with "
    "a letter or digit",
)
"""A schedule's name: part of its id and of its pages' workflow ids, so never a '/'."""


def drift_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a drift schedule, or None."""
    return DRIFT_NAME.problem(name)


class NoSuchDriftScheduleError(LookupError):
    """No drift schedule has that name (or the schedule of that id is no drift check)."""


def targets_digest(targets: Sequence[MeshTarget], page_size: int = DRIFT_PAGE_SIZE) -> str:
    """``sha256:…`` of the targets in order and the size of their pages, defaults left out (as
    a rollout's digest leaves them out): the same targets paged otherwise are other pages."""
    document = {
        "page_size": page_size,
        "targets": [t.model_dump(mode="json", exclude_defaults=True) for t in targets],
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def every_problem(seconds: float) -> str | None:
    """Why a check cannot run every ``seconds``, or None."""
    if seconds < MIN_EVERY_S:
        return (
            f"{format_duration(seconds)} is shorter than a minute: a drift check lists every "
            "project and region, at most once a minute"
        )
    return None


async def store_drift_pages(
    client: Client,
    name: str,
    digest: str,
    targets: Sequence[MeshTarget],
    *,
    task_queue: str,
    page_size: int = DRIFT_PAGE_SIZE,
) -> DriftPages:
    """Store ``targets`` in pages of ``page_size``, each a ``DriftTargetPageWorkflow`` that
    stays Running; a page open already under its id (the same digest) is kept."""
    where = DriftPages(name=name, digest=digest, total=len(targets), page_size=page_size)
    gate = asyncio.Semaphore(STARTS_IN_PARALLEL)

    async def one(page_no: int, workflow_id: str) -> None:
        first = page_no * page_size
        page = DriftPage(
            name=name, digest=digest, page=page_no, targets=list(targets[first : first + page_size])
        )
        async with gate:
            await client.start_workflow(
                DRIFT_PAGE_WORKFLOW,
                page,
                id=workflow_id,
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                static_summary=(
                    f"drift schedule {name}: targets {first}+{len(page.targets)} "
                    f"({short_digest(digest)})"
                ),
            )

    await asyncio.gather(*(one(n, wid) for n, wid in enumerate(where.page_ids())))
    return where


async def _terminate(client: Client, workflow_ids: Sequence[str], reason: str) -> int:
    gate = asyncio.Semaphore(STARTS_IN_PARALLEL)

    async def one(workflow_id: str) -> bool:
        async with gate:
            try:
                await client.get_workflow_handle(workflow_id).terminate(reason=reason)
            except RPCError as exc:
                # Closed already, or never stored: nothing left to end.
                if exc.status == RPCStatusCode.NOT_FOUND:
                    return False
                raise
            return True

    return sum(await asyncio.gather(*(one(w) for w in workflow_ids)))


async def open_pages(client: Client, name: str) -> list[str]:
    """The workflow ids of the schedule's page workflows still open, as visibility lists them
    (it may lag a moment behind a start or a termination)."""
    query = (
        f'WorkflowId STARTS_WITH "{drift_pages_prefix(name)}" AND '
        f'WorkflowType = "{DRIFT_PAGE_WORKFLOW}" AND ExecutionStatus = "Running"'
    )
    return [execution.id async for execution in client.list_workflows(query)]


async def terminate_pages(
    client: Client, name: str, keep: DriftPages | None, reason: str, *, also: DriftPages | None
) -> int:
    """End the schedule's page workflows other than those of ``keep``: those of ``also`` (the
    pages the schedule named until now), and any other open one visibility lists."""
    kept = set(keep.page_ids()) if keep is not None else set()
    ids = list(dict.fromkeys([*(also.page_ids() if also else []), *await open_pages(client, name)]))
    return await _terminate(client, [w for w in ids if w not in kept], reason)


def _schedule(
    inp: DriftCheckInput,
    *,
    every_s: float,
    source: str,
    task_queue: str,
    state: ScheduleState | None = None,
) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DRIFT_CHECK_WORKFLOW,
            inp,
            id=drift_check_workflow_id(inp.name),
            task_queue=task_queue,
            execution_timeout=CHECK_TIMEOUT,
            memo={MEMO_SOURCE: source, MEMO_EVERY: format_duration(every_s)},
            static_summary=f"Drift check {inp.name}: {inp.total} targets of {source}",
            static_details=(
                f"read-only: every {format_duration(every_s)}, targets in {inp.pages} pages "
                f"({short_digest(inp.digest)})"
                + (", drift posted to the notify webhook" if inp.webhook else "")
            ),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=every_s))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCHUP_WINDOW),
        state=state or ScheduleState(note=f"drift check of {source}"),
    )


@dataclass(frozen=True)
class SavedSchedule:
    """What ``save_drift_schedule`` did."""

    name: str
    schedule_id: str
    created: bool
    """False: the schedule existed and was updated."""
    input: DriftCheckInput
    every_s: float
    source: str
    old_pages_terminated: int
    next_run: datetime | None


async def save_drift_schedule(
    client: Client,
    name: str,
    targets: Sequence[MeshTarget],
    *,
    every_s: float,
    source: str,
    task_queue: str,
    webhook: str | None = None,
    page_size: int = DRIFT_PAGE_SIZE,
) -> SavedSchedule:
    """Create the drift schedule ``name``, or update it when it exists (its paused state and
    note kept); its targets stored first, the pages of its previous targets ended after.

    Raises:
        ValueError: ``every_s`` is shorter than ``MIN_EVERY_S``, or there are no targets.
        NoSuchDriftScheduleError: a schedule of that id runs something else (nothing is
            stored then).
    """
    problem = every_problem(every_s)
    if problem is not None:
        raise ValueError(problem)
    if not targets:
        raise ValueError("a drift schedule needs at least one target")
    schedule_id = drift_schedule_id(name)
    handle = client.get_schedule_handle(schedule_id)
    # Before anything is stored: a schedule of that id that runs something else is not ours.
    previous = await _existing_input(client, handle)
    digest = targets_digest(targets, page_size)
    where = await store_drift_pages(
        client, name, digest, targets, task_queue=task_queue, page_size=page_size
    )
    inp = DriftCheckInput(**where.model_dump(), webhook=webhook)
    if previous is None:
        try:
            handle = await client.create_schedule(
                schedule_id,
                _schedule(inp, every_s=every_s, source=source, task_queue=task_queue),
                memo={MEMO_SOURCE: source},
            )
        except ScheduleAlreadyRunningError:
            # Created by another save since it was looked for: this one updates it.
            previous = await _existing_input(client, handle)
    created = previous is None
    if previous is not None:

        def updated(given: ScheduleUpdateInput) -> ScheduleUpdate:
            # What an operator did to the schedule stays: paused, and why.
            state = given.description.schedule.state
            return ScheduleUpdate(
                _schedule(
                    inp,
                    every_s=every_s,
                    source=source,
                    task_queue=task_queue,
                    state=ScheduleState(note=state.note, paused=state.paused),
                )
            )

        await handle.update(updated)
    ended = 0
    if previous is not None and previous.digest != digest:
        ended = await terminate_pages(
            client, name, where, f"drift schedule {name} now checks other targets", also=previous
        )
    desc = await handle.describe()
    next_times = desc.info.next_action_times
    return SavedSchedule(
        name=name,
        schedule_id=schedule_id,
        created=created,
        input=inp,
        every_s=every_s,
        source=source,
        old_pages_terminated=ended,
        next_run=next_times[0] if next_times else None,
    )


async def _decoded(client: Client, payloads: Sequence[Payload], hint: type) -> Any:
    [value] = await client.data_converter.decode(list(payloads), [hint])
    return value


async def _existing_input(client: Client, handle: ScheduleHandle) -> DriftCheckInput | None:
    """The input of the drift schedule of ``handle``; None when there is no such schedule.

    Raises:
        NoSuchDriftScheduleError: a schedule of that id starts something other than a check.
    """
    try:
        desc = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return await _check_input(client, desc)


async def _check_input(client: Client, desc: ScheduleDescription) -> DriftCheckInput:
    """The input the schedule starts its checks with.

    Raises:
        NoSuchDriftScheduleError: the schedule starts something other than a drift check.
    """
    action = desc.schedule.action
    if not isinstance(action, ScheduleActionStartWorkflow) or action.workflow != (
        DRIFT_CHECK_WORKFLOW
    ):
        raise NoSuchDriftScheduleError(f"schedule {desc.id} does not run {DRIFT_CHECK_WORKFLOW}")
    args = [a for a in action.args if isinstance(a, Payload)]
    if len(args) != 1:
        raise NoSuchDriftScheduleError(f"schedule {desc.id} holds no drift check input")
    value = await _decoded(client, args, DriftCheckInput)
    if not isinstance(value, DriftCheckInput):
        raise NoSuchDriftScheduleError(f"schedule {desc.id} holds no drift check input")
    return value


async def _memo_text(client: Client, memo: Mapping[str, Any] | None, key: str) -> str | None:
    raw = (memo or {}).get(key)
    if raw is None:
        return None
    value = await _decoded(client, [raw], str) if isinstance(raw, Payload) else raw
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class LastRun:
    """The most recent check a schedule started, and how it ended (if it has)."""

    workflow_id: str
    run_id: str
    started: datetime | None
    status: str
    """running, completed, failed, cancelled, terminated, timed out; or unknown once the
    namespace no longer keeps it."""
    report: DriftReport | None = None


@dataclass(frozen=True)
class ListedSchedule:
    """One drift schedule, as ``meshfleet drift --list`` shows it."""

    name: str
    schedule_id: str
    every_s: float | None
    source: str | None
    created_from: str | None
    input: DriftCheckInput
    paused: bool
    note: str | None
    next_run: datetime | None
    last_run: LastRun | None
    running: int


_STATUS_WORDS = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "timed out",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "continued as new",
}


async def _last_run(client: Client, desc: ScheduleDescription) -> LastRun | None:
    recent = desc.info.recent_actions
    if not recent:
        return None
    last = recent[-1]
    action = last.action
    if not isinstance(action, ScheduleActionExecutionStartWorkflow):
        return None
    handle = client.get_workflow_handle(
        action.workflow_id, run_id=action.first_execution_run_id, result_type=DriftReport
    )
    try:
        status = (await handle.describe()).status
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        return LastRun(
            action.workflow_id, action.first_execution_run_id, last.started_at, "unknown"
        )
    report = None
    if status == WorkflowExecutionStatus.COMPLETED:
        report = await handle.result(follow_runs=False)
    word = _STATUS_WORDS.get(status, "unknown") if status is not None else "unknown"
    return LastRun(action.workflow_id, action.first_execution_run_id, last.started_at, word, report)


async def describe_drift_schedule(client: Client, name: str) -> ListedSchedule:
    """The drift schedule ``name``, its last run and its report.

    Raises:
        NoSuchDriftScheduleError: there is none of that name.
    """
    schedule_id = drift_schedule_id(name)
    try:
        desc = await client.get_schedule_handle(schedule_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise NoSuchDriftScheduleError(f"no drift schedule {name!r}") from exc
        raise
    inp = await _check_input(client, desc)
    action = desc.schedule.action
    memo = action.memo if isinstance(action, ScheduleActionStartWorkflow) else None
    intervals = desc.schedule.spec.intervals
    next_times = desc.info.next_action_times
    created_from = await _memo_text(client, await desc.memo(), MEMO_SOURCE)
    return ListedSchedule(
        name=name,
        schedule_id=schedule_id,
        every_s=intervals[0].every.total_seconds() if intervals else None,
        source=await _memo_text(client, memo, MEMO_SOURCE) or created_from,
        created_from=created_from,
        input=inp,
        paused=desc.schedule.state.paused,
        note=desc.schedule.state.note,
        next_run=next_times[0] if next_times and not desc.schedule.state.paused else None,
        last_run=await _last_run(client, desc),
        running=len(desc.info.running_actions),
    )


async def list_drift_schedules(client: Client) -> list[ListedSchedule]:
    """Every drift schedule of the namespace, by name (the list may lag a moment behind a
    create or a delete: Temporal's list of schedules is eventually consistent)."""
    names = sorted(
        {
            listed.id.removeprefix(SCHEDULE_PREFIX)
            async for listed in await client.list_schedules()
            if listed.id.startswith(SCHEDULE_PREFIX)
        }
    )
    found: list[ListedSchedule] = []
    for name in names:
        try:
            found.append(await describe_drift_schedule(client, name))
        except NoSuchDriftScheduleError:
            continue  # deleted since it was listed, or a schedule of that id that is not ours
    return found


async def delete_drift_schedule(client: Client, name: str) -> int:
    """Delete the drift schedule ``name`` and end its page workflows; how many were ended.

    Raises:
        NoSuchDriftScheduleError: there is none of that name.
    """
    schedule_id = drift_schedule_id(name)
    handle = client.get_schedule_handle(schedule_id)
    try:
        desc = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise NoSuchDriftScheduleError(f"no drift schedule {name!r}") from exc
        raise
    inp = await _check_input(client, desc)
    await handle.delete()
    return await terminate_pages(client, name, None, f"drift schedule {name} was deleted", also=inp)


async def trigger_drift_check(client: Client, name: str) -> None:
    """Run a check of the schedule ``name`` now (with overlap SKIP: not while one runs)."""
    await client.get_schedule_handle(drift_schedule_id(name)).trigger()
