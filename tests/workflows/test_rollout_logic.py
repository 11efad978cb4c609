"""Rollout logic at the workflow level: the real workflows on a real worker, stub activities.

``MeshRolloutWorkflow`` and ``CreateMeshWorkflow`` run unchanged on a worker of the session's dev
server. The ASM activities are stubs on purpose, registered under their real names: no HTTP, no
simulator, so each test decides exactly when every target ends. A stub ``create_mesh`` blocks on
an ``asyncio.Event`` per mesh until the test releases it and counts how many run at once;
nothing waits on the wall clock. ``await_target`` is the real activity (it only asks Temporal).
"""

from __future__ import annotations

import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.targets import TargetWatchActivities
from meshfleet.contract.payloads import (
    CANCEL_UPDATE,
    CREATE_MESH_WORKFLOW,
    PAUSE_UPDATE,
    RESUME_UPDATE,
    ROLLOUT_WORKFLOW,
    CreateMeshInput,
    RolloutInput,
    rollout_workflow_id,
)
from meshfleet.models import RolloutProgress, RolloutState
from meshfleet.rollouts import final_report
from tests.helpers.eventually import eventually
from tests.helpers.fleet import fast_strategy, names, unique_fleet
from tests.helpers.rollout_stubs import REFUSED_CODE, StubMeshApi, start, started, update
from tests.helpers.rollout_watch import WAIT_S, progress_reaches, runs, state_is
from workflows.create_mesh import CreateMeshWorkflow
from workflows.rollout import MeshRolloutWorkflow


@pytest.fixture
async def stubs(client: Client, task_queue: str) -> AsyncIterator[StubMeshApi]:
    """A worker of the real workflows with the stub activities, on this test's task queue."""
    api = StubMeshApi()
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[MeshRolloutWorkflow, CreateMeshWorkflow],
        # create_mesh runs as a local activity, which a worker takes from the same list.
        activities=[
            api.create_mesh,
            api.wait_for_mesh,
            TargetWatchActivities(client).await_target,
            TargetWatchActivities(client).request_cancel,
        ],
    )
    async with worker:
        try:
            yield api
        finally:
            # A held stub would keep the worker from shutting down.
            api.release_all()


async def test_each_wave_starts_only_after_the_previous_one_finished(
    client: Client, task_queue: str, stubs: StubMeshApi
) -> None:
    targets = unique_fleet(6)
    n = names(targets)
    handle = await start(client, task_queue, targets, window=10, waves=[1, 3, "100%"])

    await started(stubs, n[:1])  # the canary alone, though the window has room for all
    first = await progress_reaches(handle, lambda p: p.in_flight == 1, "the canary in flight")
    assert (first.wave, first.waves, first.pending) == (1, 3, 5)

    stubs.release(n[0])
    await started(stubs, n[:3])
    second = await progress_reaches(handle, lambda p: p.created == 1, "the canary counted")
    assert (second.wave, second.in_flight, second.pending) == (2, 2, 3)

    stubs.release(n[1])
    # One of wave 2 is still running: wave 3 waits for it, window or not.
    held = await progress_reaches(handle, lambda p: p.created == 2, "2 targets counted")
    assert (held.wave, held.in_flight, held.pending) == (2, 1, 3)
    assert sorted(stubs.started()) == sorted(n[:3])

    stubs.release(n[2])
    await started(stubs, n)
    stubs.release_all()
    report = await final_report(handle)

    assert (report.state, report.created, report.failed) == (RolloutState.COMPLETED, 6, 0)
    assert report.wave == 3
    # In the stubs' own order of events: no target of a wave began before the last one of
    # the wave before it had ended.
    for later in n[1:3]:
        assert stubs.position("start", later) > stubs.position("end", n[0])
    for later in n[3:]:
        assert stubs.position("start", later) > stubs.position("end", n[2])


async def test_the_window_is_filled_and_never_exceeded(
    client: Client, task_queue: str, stubs: StubMeshApi
) -> None:
    targets = unique_fleet(8)
    n = names(targets)
    handle = await start(client, task_queue, targets, window=3)

    await started(stubs, n[:3])
    full = await progress_reaches(handle, lambda p: p.in_flight == 3, "a full window")
    assert full.pending == 5
    # Release one target at a time: each end lets exactly one more in.
    for i, name in enumerate(n):
        stubs.release(name)
        expected = n[: min(i + 4, len(n))]
        await started(stubs, expected)
        assert stubs.in_flight <= 3
    report = await final_report(handle)

    assert (report.state, report.created, report.in_flight) == (RolloutState.COMPLETED, 8, 0)
    assert stubs.peak == 3
    # The fourth target began only once the first had ended.
    assert stubs.position("start", n[3]) > stubs.position("end", n[0])


async def test_a_spent_failure_budget_halts_and_resume_grants_a_fresh_one(
    client: Client, task_queue: str, stubs: StubMeshApi
) -> None:
    targets = unique_fleet(6)
    n = names(targets)
    stubs.refused = {n[0], n[1], n[3]}
    stubs.release_all()
    # One at a time, so which target ends when is fixed; one failure is allowed.
    handle = await start(client, task_queue, targets, window=1, max_failures=1)

    halted = await progress_reaches(handle, state_is(RolloutState.HALTED), "a halt")
    assert (halted.failed, halted.created, halted.in_flight, halted.pending) == (2, 0, 0, 4)
    assert halted.failure_budget == 1
    assert stubs.started() == n[:2], "a halted rollout started another target"
    assert {f.error_code for f in halted.failures} == {REFUSED_CODE}

    resumed = await update(handle, RESUME_UPDATE)
    assert resumed.state == RolloutState.RUNNING
    report = await final_report(handle)

    # The third failure fits the fresh budget (2 spent + 1 more allowed): no second halt.
    assert report.state == RolloutState.COMPLETED
    assert (report.created, report.failed) == (3, 3)
    assert sorted(f.mesh_name for f in report.failures) == sorted([n[0], n[1], n[3]])
    assert stubs.started() == n


async def test_pause_starts_nothing_new_and_resume_goes_on(
    client: Client, task_queue: str, stubs: StubMeshApi
) -> None:
    targets = unique_fleet(4)
    n = names(targets)
    handle = await start(client, task_queue, targets, window=2)
    await started(stubs, n[:2])

    paused = await update(handle, PAUSE_UPDATE)
    assert paused.state == RolloutState.PAUSED
    stubs.release(*n[:2])
    # Both in-flight targets end while paused; their slots stay empty.
    idle = await progress_reaches(handle, lambda p: p.created == 2, "the in-flight targets done")
    assert (idle.state, idle.in_flight, idle.pending) == (RolloutState.PAUSED, 0, 2)
    assert sorted(stubs.started()) == n[:2]

    resumed = await update(handle, RESUME_UPDATE)
    assert resumed.state == RolloutState.RUNNING
    await started(stubs, n)
    stubs.release_all()
    report = await final_report(handle)
    assert (report.state, report.created) == (RolloutState.COMPLETED, 4)


@pytest.mark.parametrize("how", ["update", "temporal-cancel"])
async def test_cancel_lets_in_flight_targets_finish_and_counts_the_rest(
    client: Client, task_queue: str, stubs: StubMeshApi, how: str
) -> None:
    targets = unique_fleet(5)
    n = names(targets)
    handle = await start(client, task_queue, targets, window=2)
    await started(stubs, n[:2])

    if how == "update":
        cancelling = await update(handle, CANCEL_UPDATE)
        assert cancelling.state == RolloutState.CANCELLING
    else:
        # A cancel from the Temporal UI or CLI: the workflow treats it as the update.
        await handle.cancel()
        await progress_reaches(handle, state_is(RolloutState.CANCELLING), "cancelling")
    # The rollout waits for the targets it started: they are not abandoned mid-create.
    stubs.release(*n[:2])
    report = await final_report(handle)

    assert report.state == RolloutState.CANCELLED
    assert (report.created, report.cancelled, report.in_flight, report.pending) == (2, 3, 0, 0)
    assert sorted(stubs.started()) == n[:2]


async def test_continue_as_new_carries_the_targets_in_flight(
    client: Client, task_queue: str, stubs: StubMeshApi
) -> None:
    targets = unique_fleet(5)
    n = names(targets)
    handle = await start(client, task_queue, targets, window=3, max_starts_per_run=2)
    await started(stubs, n[:2])

    # The first run hands over after 2 starts, with both targets still held.
    await runs(client, handle.id, at_least=2)
    assert stubs.in_flight >= 2
    carried = await progress_reaches(handle, lambda p: p.in_flight == 3, "a full window")
    assert carried.pending == 2

    for name in n:
        stubs.release(name)
    report = await final_report(handle)

    assert (report.state, report.created, report.in_flight) == (RolloutState.COMPLETED, 5, 0)
    # Each target was created once, counted once, whichever run started or awaited it.
    assert Counter(stubs.started()) == Counter(n)
    assert stubs.peak <= 3
    assert await runs(client, handle.id, at_least=3) >= 3


async def test_a_mesh_another_workflow_drives_is_retried_until_it_is_free(
    client: Client, task_queue: str, stubs: StubMeshApi
) -> None:
    (mesh,) = unique_fleet(1)
    # Another rollout's target holds the mesh's workflow id.
    blocker = await client.start_workflow(
        CREATE_MESH_WORKFLOW,
        CreateMeshInput(rollout_id="someone-else", target=mesh, search_attributes=False),
        id=mesh.workflow_id,
        task_queue=task_queue,
    )
    await started(stubs, [mesh.mesh_name])
    handle = await start(client, task_queue, [mesh])

    async def start_refused() -> bool:
        events = (await handle.fetch_history()).events
        failed = EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_FAILED
        return any(e.event_type == failed for e in events)

    await eventually(start_refused, WAIT_S, "the rollout meeting the taken workflow id")
    stubs.release(mesh.mesh_name)
    await blocker.result()
    report = await final_report(handle)

    # Not "MeshBusy": the mesh came free within the rollout's patience and it drove it itself.
    assert (report.created, report.failed) == (1, 0), report.failures
    assert stubs.started() == [mesh.mesh_name, mesh.mesh_name]


@workflow.defn(name="HoldsTheMeshId", sandboxed=False)
class HoldsTheMeshId:
    """Another rollout's target that keeps a mesh's workflow id, idle, for the whole test."""

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


async def test_a_mesh_that_stays_taken_fails_as_busy_without_halting_the_others() -> None:
    """The rollout's patience with a taken id is about a minute of timers (1 + 2 + ... + 15 s).

    Only this test runs on Temporal's time-skipping test server instead of the dev server: it
    skips those timers while nothing else is pending, so the minute passes in a moment.
    """
    taken, free = unique_fleet(2)
    server = Path(sys.executable).parent / "temporal-test-server"
    async with await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=str(server)
    ) as env:
        api = StubMeshApi(open=True)
        task_queue = f"tq-{uuid.uuid4()}"
        async with Worker(
            env.client,
            task_queue=task_queue,
            workflows=[MeshRolloutWorkflow, CreateMeshWorkflow, HoldsTheMeshId],
            activities=[api.create_mesh, api.wait_for_mesh],
        ):
            # Discarded with the test server: nothing to clean up.
            await env.client.start_workflow(
                HoldsTheMeshId.run,
                id=taken.workflow_id,
                task_queue=task_queue,
                execution_timeout=timedelta(hours=1),
            )
            rollout_id = f"logic-{uuid.uuid4().hex[:8]}"
            handle = await env.client.start_workflow(
                ROLLOUT_WORKFLOW,
                RolloutInput(
                    rollout_id=rollout_id,
                    strategy=fast_strategy(window=2),
                    total=2,
                    targets=[taken, free],
                    search_attributes=False,
                ),
                id=rollout_workflow_id(rollout_id),
                task_queue=task_queue,
                result_type=RolloutProgress,
            )
            report = await final_report(handle)

    assert (report.state, report.created, report.failed) == (RolloutState.COMPLETED, 1, 1)
    assert [(f.mesh_name, f.error_code) for f in report.failures] == [(taken.mesh_name, "MeshBusy")]
    # The taken mesh was never POSTed by this rollout; the free one was, once.
    assert api.started() == [free.mesh_name]


async def test_a_rollout_that_ends_over_its_budget_ends_failed(
    client: Client, task_queue: str, stubs: StubMeshApi
) -> None:
    # Every target starts at once (one wave, a window for all), so the budget can only be
    # exceeded after nothing is left to hold back: the end must still say it went wrong.
    targets = unique_fleet(8)
    n = names(targets)
    stubs.refused.update(n[:3])
    handle = await start(client, task_queue, targets, window=8, waves=["100%"], max_failures=1)
    await started(stubs, n)
    stubs.release_all()
    report = await final_report(handle)

    assert (report.state, report.created, report.failed) == (RolloutState.FAILED, 5, 3)
    assert report.finished_at is not None
    assert sorted(f.mesh_name for f in report.failures) == sorted(n[:3])


async def test_a_rollout_within_its_budget_still_ends_completed(
    client: Client, task_queue: str, stubs: StubMeshApi
) -> None:
    targets = unique_fleet(4)
    stubs.refused.add(targets[0].mesh_name)
    handle = await start(client, task_queue, targets, window=4, waves=["100%"], max_failures=1)
    stubs.release_all()
    report = await final_report(handle)

    assert (report.state, report.created, report.failed) == (RolloutState.COMPLETED, 3, 1)
