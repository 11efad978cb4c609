"""Start, attach to, watch and steer rollouts through a Temporal client (CLI, tests, bench)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import quote

from temporalio.api.enums.v1 import IndexedValueType, TaskQueueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from meshfleet.contract import search_attributes as sa
from meshfleet.contract.actions import action_of
from meshfleet.contract.deletion import rollback_workflow_id
from meshfleet.contract.failures import carried
from meshfleet.contract.payloads import (
    APPROVE_UPDATE,
    CANCEL_UPDATE,
    FINALIZE_UPDATE,
    INLINE_TARGETS_MAX,
    PAGE_SIZE,
    PAUSE_UPDATE,
    PROGRESS_QUERY,
    RESUME_UPDATE,
    ROLLOUT_WORKFLOW,
    TARGET_PAGE_WORKFLOW,
    ApproveInput,
    FinalizeInput,
    RegionSegment,
    RolloutInput,
    TargetPage,
    page_workflow_id,
    rollout_workflow_id,
)
from meshfleet.manifest.schedule import order_targets
from meshfleet.models import (
    MeshTarget,
    RolloutProgress,
    RolloutSpec,
    RolloutState,
    RolloutStrategy,
)
from meshfleet.rollout_identity import MANIFEST_DIGEST, RESTARTABLE, check_reuse, manifest_digest
from meshfleet.waves import lay_out
from meshfleet.worker_builds import FRESH, OlderWorkersError, older_builds

RolloutHandle = WorkflowHandle[Any, RolloutProgress]


@dataclass(frozen=True)
class StartedRollout:
    """What ``start_rollout`` did: started a new rollout, or found the one with that id."""

    rollout_id: str
    workflow_id: str
    started: bool
    search_attributes: bool


def ui_url(base: str, namespace: str, workflow_id: str) -> str:
    """The Temporal Web UI page of a workflow."""
    return (
        f"{base.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows/"
        f"{quote(workflow_id, safe='')}"
    )


async def registered_search_attributes(client: Client) -> set[str]:
    """Names of our custom search attributes that the namespace knows."""
    resp = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    return {key.name for key in sa.ALL} & set(resp.custom_attributes)


async def search_attributes_registered(client: Client) -> bool:
    """Whether the namespace knows every one of our search attributes (then workflows use them)."""
    return len(await registered_search_attributes(client)) == len(sa.ALL)


async def has_workers(client: Client, task_queue: str) -> bool:
    """Whether any worker polled ``task_queue`` for workflow tasks recently."""
    resp = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return bool(resp.pollers)


def travels_inline(count: int, page_size: int) -> bool:
    """Whether ``count`` targets travel in the workflow input rather than in stored pages."""
    return count <= min(page_size, INLINE_TARGETS_MAX)


Walked = TypeVar("Walked", bound=RolloutInput)


def walk_input(
    model: type[Walked],
    rollout_id: str,
    strategy: RolloutStrategy,
    targets: list[MeshTarget],
    *,
    page_size: int,
    use_search_attributes: bool,
    max_starts_per_run: int | None,
    **fields: Any,
) -> Walked:
    """The input of a rollout's (or rollback's) workflow over ``targets`` in walking order: they
    travel inline when few, else in pages the starter stores first (``launch``)."""
    return model(
        rollout_id=rollout_id,
        strategy=strategy,
        total=len(targets),
        targets=list(targets) if travels_inline(len(targets), page_size) else None,
        page_size=page_size,
        search_attributes=use_search_attributes,
        max_starts_per_run=max_starts_per_run,
        **fields,
    )


async def launch(
    client: Client,
    workflow_type: str,
    inp: RolloutInput,
    targets: list[MeshTarget],
    workflow_id: str,
    *,
    task_queue: str,
    page_id: Callable[[str, int], str],
    summary: str,
    details: str,
    memo: dict[str, Any] | None = None,
    restartable: Sequence[WorkflowExecutionStatus] = RESTARTABLE,
) -> StartedRollout:
    """Store the targets' pages when they do not travel inline, then ``start_once``."""
    if inp.targets is None:
        await store_pages(client, inp.rollout_id, targets, task_queue, inp.page_size, page_id)
    return await start_once(
        client,
        workflow_type,
        inp,
        workflow_id,
        task_queue=task_queue,
        summary=summary,
        details=details,
        memo=memo,
        restartable=restartable,
    )


async def register_search_attributes(client: Client) -> list[str]:
    """Create the missing custom search attributes; return the names that were added."""
    missing = [key for key in sa.ALL if key.name not in await registered_search_attributes(client)]
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={
                    key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in missing
                },
            )
        )
    return [key.name for key in missing]


async def store_pages(
    client: Client,
    rollout_id: str,
    targets: list[MeshTarget],
    task_queue: str,
    size: int,
    page_id: Callable[[str, int], str] = page_workflow_id,
) -> None:
    """Store ``targets`` in pages of ``size``, each a ``RolloutTargetPageWorkflow`` whose input
    is its result, under ``page_id(rollout_id, n)``; a page stored already is kept."""
    starts = []
    for page_no, first in enumerate(range(0, len(targets), size)):
        page = TargetPage(
            rollout_id=rollout_id,
            page=page_no,
            targets=targets[first : first + size],
        )
        starts.append(
            client.start_workflow(
                TARGET_PAGE_WORKFLOW,
                page,
                id=page_id(rollout_id, page_no),
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                static_summary=f"targets {first}+{len(page.targets)} of {rollout_id}",
            )
        )
    await asyncio.gather(*starts)


async def start_rollout(
    client: Client,
    spec: RolloutSpec,
    *,
    task_queue: str,
    use_search_attributes: bool | None = None,
    max_starts_per_run: int | None = None,
    page_size: int = PAGE_SIZE,
) -> StartedRollout:
    """Start the rollout, or attach to the one already started with the same rollout id.

    A rollout id that already ran is not started again: the caller gets that rollout's handle
    and report (use a new rollout id to roll out again). Only a terminated or timed-out rollout
    may be started anew under the same id, and only with the manifest it ran.

    Raises:
        RolloutIdReusedError: the id names a rollout of another manifest, or one rolled back.
        OlderWorkersError: a rollout that is not a creation, while a worker before 0.3.0
            polls the task queue.

    Args:
        client: A client using the pydantic data converter.
        spec: The validated manifest.
        task_queue: Where the meshfleet workers poll.
        use_search_attributes: Tag workflows with our search attributes; by default, when the
            namespace has them registered.
        max_starts_per_run: Continue as new after this many target starts (tests).
        page_size: Targets per stored page; a fleet no larger travels inline.
    """
    if use_search_attributes is None:
        use_search_attributes = await search_attributes_registered(client)
    workflow_id = rollout_workflow_id(spec.rollout_id)
    targets, inp = rollout_input(
        spec,
        page_size=page_size,
        use_search_attributes=use_search_attributes,
        max_starts_per_run=max_starts_per_run,
    )
    digest = manifest_digest(spec.strategy, targets)
    # Before anything is written: a reused id must not overwrite the pages of the rollout it
    # names, nor attach a pipeline to a rollout of another manifest.
    existing = await check_reuse(client, spec.rollout_id, workflow_id, digest)
    if existing is not None and existing.status not in RESTARTABLE:
        return StartedRollout(spec.rollout_id, workflow_id, False, use_search_attributes)
    if inp.action != "create":
        await _refuse_older_workers(client, task_queue, inp.action)
    started = await launch(
        client,
        ROLLOUT_WORKFLOW,
        inp,
        targets,
        workflow_id,
        task_queue=task_queue,
        page_id=page_workflow_id,
        summary=f"Mesh rollout {spec.rollout_id}: {len(spec.targets)} targets",
        details=(
            f"window {spec.strategy.window}, waves {spec.strategy.waves}, "
            f"max failures {spec.strategy.max_failures}"
        ),
        memo={MANIFEST_DIGEST: digest},
    )
    if not started.started:
        # Another start of this id won the race since the check: held to the same manifest.
        await check_reuse(client, spec.rollout_id, workflow_id, digest)
    return started


async def _refuse_older_workers(client: Client, task_queue: str, action: str) -> None:
    """Raise ``OlderWorkersError`` while a worker before 0.3.0 polls ``task_queue``: it would
    run this rollout as a creation."""
    older = await older_builds(client, task_queue)
    if older:
        raise OlderWorkersError(
            f"workers of meshfleet {', '.join(older)} poll task queue {task_queue!r}: a worker "
            f"before 0.3.0 runs a {action} rollout as a creation (adopting every mesh as it "
            "stands), so nothing was started; finish the rolling restart (every worker 0.3.0 "
            f"or later), then start it again (Temporal lists a stopped worker for up to "
            f"{int(FRESH.total_seconds())} s more)"
        )


async def start_once(
    client: Client,
    workflow_type: str,
    inp: RolloutInput,
    workflow_id: str,
    *,
    task_queue: str,
    summary: str,
    details: str,
    memo: dict[str, Any] | None = None,
    restartable: Sequence[WorkflowExecutionStatus] = RESTARTABLE,
) -> StartedRollout:
    """Start a rollout's (or rollback's) workflow, or find the one already started under its id.

    Args:
        restartable: The ways a previous run may have ended for a new run to start under its
            id; after any other (running, or a rollout that completed, failed or was
            cancelled: it ran its course) the caller attaches to it. A rollback passes
            ``ROLLBACK_RESTARTABLE``: only one that completed stands.
    """
    existing = await _status_of(client, workflow_id)
    if existing is not None and existing not in restartable:
        return StartedRollout(inp.rollout_id, workflow_id, False, inp.search_attributes)
    try:
        await client.start_workflow(
            workflow_type,
            inp,
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=(
                TypedSearchAttributes([SearchAttributePair(sa.ROLLOUT_ID, inp.rollout_id)])
                if inp.search_attributes
                else None
            ),
            static_summary=summary,
            static_details=details,
            memo=memo,
        )
    except WorkflowAlreadyStartedError:
        return StartedRollout(inp.rollout_id, workflow_id, False, inp.search_attributes)
    return StartedRollout(inp.rollout_id, workflow_id, True, inp.search_attributes)


async def _status_of(client: Client, workflow_id: str) -> WorkflowExecutionStatus | None:
    try:
        return (await client.get_workflow_handle(workflow_id).describe()).status
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


def rollout_input(
    spec: RolloutSpec,
    *,
    page_size: int = PAGE_SIZE,
    use_search_attributes: bool = True,
    max_starts_per_run: int | None = None,
) -> tuple[list[MeshTarget], RolloutInput]:
    """The targets in rollout order, and the workflow's input for them.

    With ``strategy.regions`` the targets are grouped by the regions' order (each region keeps
    the manifest's order) before anything is written, and ``segments`` says where each region's
    targets lie; the pages hold them in that order too. Without regions the input is exactly
    the manifest's, as before regions existed.

    Raises:
        ValueError: a target's region is not in ``strategy.regions.order``.
    """
    targets, parts = order_targets(spec.strategy, spec.targets)
    inp = walk_input(
        RolloutInput,
        spec.rollout_id,
        spec.strategy,
        targets,
        page_size=page_size,
        use_search_attributes=use_search_attributes,
        max_starts_per_run=max_starts_per_run,
        action=action_of(spec.strategy.existing),
        segments=(
            [RegionSegment(region=p.region, start=p.start, end=p.end) for p in parts]
            if spec.strategy.regions is not None
            else None
        ),
    )
    return targets, inp


def started_report(spec: RolloutSpec) -> RolloutProgress:
    """The report of a rollout of ``spec`` that has just started: nothing done yet, at the
    first wave the workflow walks (laid out from the input the starter gives it)."""
    _, inp = rollout_input(spec)
    first = lay_out(inp.strategy, inp.total, inp.segments)[0]
    return RolloutProgress(
        rollout_id=spec.rollout_id,
        state=RolloutState.RUNNING,
        total=inp.total,
        created=0,
        adopted=0,
        failed=0,
        cancelled=0,
        in_flight=0,
        pending=inp.total,
        wave=first.number,
        waves=first.count,
        region=first.region,
        failure_budget=inp.strategy.failure_budget(inp.total),
    )


def workflow_id_of(rollout_id: str, *, rollback: bool = False) -> str:
    """The workflow id of a rollout, or of its rollback."""
    return rollback_workflow_id(rollout_id) if rollback else rollout_workflow_id(rollout_id)


def rollout_handle(client: Client, rollout_id: str, *, rollback: bool = False) -> RolloutHandle:
    """The handle of a rollout's (or its rollback's) latest run; continue-as-new is followed."""
    return client.get_workflow_handle(
        workflow_id_of(rollout_id, rollback=rollback), result_type=RolloutProgress
    )


async def progress(client: Client, rollout_id: str, *, rollback: bool = False) -> RolloutProgress:
    """The rollout's progress: live while it runs, its report once it has ended.

    Raises:
        temporalio.service.RPCError: no such rollout (status NOT_FOUND), or Temporal unreachable.
    """
    handle = rollout_handle(client, rollout_id, rollback=rollback)
    desc = await handle.describe()
    if desc.status == WorkflowExecutionStatus.RUNNING:
        return await _query_progress(handle)
    return await final_report(handle)


async def _query_progress(handle: RolloutHandle) -> RolloutProgress:
    return cast(RolloutProgress, await handle.query(PROGRESS_QUERY, result_type=RolloutProgress))


async def final_report(handle: RolloutHandle) -> RolloutProgress:
    """The report of a rollout (or rollback) that has ended, whichever way it ended.

    Completed, it is the result (so was a failed or cancelled one of release 0.1.0); Failed, the
    failure's first detail; Canceled, terminated or timed out, the last state the workflow can
    still answer (its ``progress`` query, which a worker answers from the closed history).
    """
    try:
        return await handle.result()
    except WorkflowFailureError as err:
        report = carried(err.cause, RolloutProgress)
        if report is not None:
            return report
    return await _query_progress(handle)


# How a rollout or rollback ended, when its report cannot say (a Canceled one says
# "cancelled" in its report too, but reading that report takes a worker).
_ENDED_WORDS = {
    WorkflowExecutionStatus.CANCELED: RolloutState.CANCELLED.value,
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "timed out",
}


async def ended_state(handle: RolloutHandle, status: WorkflowExecutionStatus | None) -> str:
    """The state a closed rollout (or rollback) ended in, as ``status`` prints it, read
    without a worker: ``completed``, ``failed`` or ``cancelled`` from its result or failure
    (a 0.1.0 rollout ended failed or cancelled in a Completed execution), ``cancelled``,
    ``terminated`` or ``timed out`` from Temporal's status."""
    if status in (WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.FAILED):
        try:
            return (await handle.result()).state.value
        except WorkflowFailureError as err:
            report = carried(err.cause, RolloutProgress)
            return report.state.value if report is not None else RolloutState.FAILED.value
    if status is None:
        return "unknown"
    return _ENDED_WORDS.get(status, status.name.lower())


def at_gate(progress: RolloutProgress) -> bool:
    """The rollout waits at an approval gate: only ``approve`` (or ``cancel``) moves it on."""
    return progress.state == RolloutState.AWAITING_APPROVAL


def at_finalize(progress: RolloutProgress) -> bool:
    """The rollout's upgraded meshes wait for ``finalize`` (or ``cancel``)."""
    return progress.state == RolloutState.AWAITING_FINALIZE


def waits_for_a_person(progress: RolloutProgress) -> bool:
    """Nothing moves the rollout on but an operator: at a gate, waiting to finalize, or halted
    with no target left in flight (``resume`` or ``cancel``). A caller waiting for the end
    would wait forever."""
    halted = progress.state == RolloutState.HALTED and progress.in_flight == 0
    return at_gate(progress) or at_finalize(progress) or halted


async def wait_for_report(
    client: Client,
    rollout_id: str,
    on_progress: Callable[[RolloutProgress], None] | None = None,
    interval_s: float = 1.0,
    *,
    stop_when: Callable[[RolloutProgress], bool] | None = None,
    rollback: bool = False,
) -> RolloutProgress:
    """Wait until the rollout ends, calling ``on_progress`` every ``interval_s`` meanwhile.

    Args:
        client: A client using the pydantic data converter.
        rollout_id: The rollout.
        on_progress: Called with each progress seen, and with the report.
        interval_s: Between progress queries.
        stop_when: Return the progress as soon as this says so (``at_gate``: a rollout that
            waits for a person would otherwise keep the caller waiting without end).
    """
    handle = rollout_handle(client, rollout_id, rollback=rollback)
    result = asyncio.ensure_future(final_report(handle))
    try:
        while not result.done():
            if on_progress is not None or stop_when is not None:
                current: RolloutProgress | None = None
                # A missed progress tick is harmless; the final report is not optional.
                with contextlib.suppress(Exception):
                    current = await progress(client, rollout_id, rollback=rollback)
                if current is not None:
                    if on_progress is not None:
                        with contextlib.suppress(Exception):
                            on_progress(current)
                    if stop_when is not None and stop_when(current):
                        return current
            await asyncio.wait({result}, timeout=interval_s)
        report = result.result()
    finally:
        result.cancel()
    if on_progress is not None:
        on_progress(report)
    return report


async def _update(
    client: Client, rollout_id: str, name: str, *, rollback: bool = False
) -> RolloutProgress:
    result = await rollout_handle(client, rollout_id, rollback=rollback).execute_update(
        name, result_type=RolloutProgress
    )
    return cast(RolloutProgress, result)


async def pause(client: Client, rollout_id: str, *, rollback: bool = False) -> RolloutProgress:
    """Start no new targets until resumed."""
    return await _update(client, rollout_id, PAUSE_UPDATE, rollback=rollback)


async def resume(client: Client, rollout_id: str, *, rollback: bool = False) -> RolloutProgress:
    """Go on after a pause or a halt."""
    return await _update(client, rollout_id, RESUME_UPDATE, rollback=rollback)


async def cancel(client: Client, rollout_id: str, *, rollback: bool = False) -> RolloutProgress:
    """Start nothing more; in-flight targets finish; the rest are reported cancelled."""
    return await _update(client, rollout_id, CANCEL_UPDATE, rollback=rollback)


async def finalize(
    client: Client, rollout_id: str, by: str, gate: RolloutProgress | None = None
) -> RolloutProgress:
    """Finalize the upgraded meshes the rollout waits with, in the name of ``by``.

    Raises:
        temporalio.client.WorkflowUpdateFailedError: the rollout refused (not awaiting it).
    """
    result = await rollout_handle(client, rollout_id).execute_update(
        FINALIZE_UPDATE, FinalizeInput(by=by), result_type=RolloutProgress
    )
    return cast(RolloutProgress, result)


async def approve(
    client: Client, rollout_id: str, by: str, gate: RolloutProgress | None = None
) -> RolloutProgress:
    """Pass the approval gate the rollout waits at, in the name of ``by``.

    Args:
        gate: The progress the approver saw at the gate: the rollout then refuses the approval
            if it waits at another gate by now (a repeated approve must not open the next one).

    Raises:
        temporalio.client.WorkflowUpdateFailedError: the rollout refused (not at that gate).
    """
    inp = ApproveInput(by=by)
    if gate is not None:
        inp = ApproveInput(by=by, wave=gate.wave, region=gate.region)
    result = await rollout_handle(client, rollout_id).execute_update(
        APPROVE_UPDATE, inp, result_type=RolloutProgress
    )
    return cast(RolloutProgress, result)
