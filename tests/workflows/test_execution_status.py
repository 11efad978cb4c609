"""Temporal's own status says how a mesh, a rollout and a rollback ended.

The production worker against the simulator over loopback, on the session's dev server: what
the Temporal UI counts and an ``ExecutionStatus`` query finds is what happened, and every
reader of a report (``final_report``, the rollback's records) still gets the whole report.
"""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError

from meshfleet import rollouts
from meshfleet.contract.failures import ROLLOUT_FAILED, carried
from meshfleet.contract.payloads import CANCEL_UPDATE, page_workflow_id
from meshfleet.models import RolloutProgress, RolloutState, TargetOutcome
from meshfleet.rollback import read_records
from meshfleet.simulator.config import FaultConfig, SimulatorConfig
from meshfleet.simulator.testing import serve
from tests.helpers.eventually import eventually_value
from tests.helpers.fleet import SIM_TOKEN, running_worker, spec, target
from tests.helpers.rollout_watch import progress_reaches


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _config(tag: str, create_seconds: float = 0.2) -> SimulatorConfig:
    return SimulatorConfig(
        create_seconds=create_seconds,
        tokens=(SIM_TOKEN,),
        faults=FaultConfig(rules=[f"doomed-{tag}-*=create-failed"]),
    )


async def failure_of(handle: WorkflowHandle[Any, Any]) -> BaseException | None:
    """The cause of the workflow's failure (its result raises); fails the test if it completed."""
    try:
        await handle.result()
    except WorkflowFailureError as err:
        return err.cause
    raise AssertionError(f"{handle.id} completed")


async def _listed(client: Client, query: str, count: int) -> list[str]:
    """The ids of the workflows ``query`` finds, once visibility shows ``count`` of them."""

    async def ids() -> list[str]:
        return sorted([w.id async for w in client.list_workflows(query)])

    return await eventually_value(ids, lambda found: len(found) == count, 30, query)


async def test_failed_meshes_and_only_they_end_failed(client: Client, task_queue: str) -> None:
    tag = uuid.uuid4().hex[:6]
    targets = [target(i) for i in range(3)] + [
        target(3, f"doomed-{tag}-a"),
        target(4, f"doomed-{tag}-b"),
    ]
    rollout_id = _id("status-two-failed")
    async with serve(_config(tag)) as sim, running_worker(client, task_queue, sim.url):
        await rollouts.start_rollout(client, spec(rollout_id, targets), task_queue=task_queue)
        report = await rollouts.wait_for_report(client, rollout_id)
        failed_ids = await _listed(
            client, f'MeshRolloutId = "{rollout_id}" AND ExecutionStatus = "Failed"', 2
        )
        completed_ids = await _listed(
            client, f'MeshRolloutId = "{rollout_id}" AND ExecutionStatus = "Completed"', 4
        )

    # Within the budget the rollout completed; its two failed targets are Failed in Temporal.
    assert (report.state, report.created, report.failed) == (RolloutState.COMPLETED, 3, 2)
    doomed = sorted(t.workflow_id for t in targets if t.mesh_name.startswith("doomed"))
    assert failed_ids == doomed
    assert f"rollout/{rollout_id}" in completed_ids
    handle = client.get_workflow_handle(doomed[0], result_type=TargetOutcome)
    cause = await failure_of(handle)
    # The error code is the failure's type and in its message; the outcome is its detail.
    assert isinstance(cause, ApplicationError)
    assert cause.type == "CreateFailed"
    assert cause.message == f"mesh doomed-{tag}-a ended in phase CreateFailed"
    outcome = carried(cause, TargetOutcome)
    assert outcome is not None
    assert (outcome.outcome, outcome.mesh_name) == ("failed", f"doomed-{tag}-a")
    # The rollback's records read the failed targets from the Failed children's details.
    records = await read_records(client, rollout_id)
    recorded = {t.target.mesh_name: t.outcome for t in records.targets}
    assert recorded[f"doomed-{tag}-a"] is not None
    assert recorded[f"doomed-{tag}-a"].outcome == "failed"  # type: ignore[union-attr]
    assert sum(1 for o in recorded.values() if o is not None and o.outcome == "created") == 3


async def test_a_rollout_over_its_budget_ends_failed_with_its_report(
    client: Client, task_queue: str
) -> None:
    tag = uuid.uuid4().hex[:6]
    targets = [target(i, f"doomed-{tag}-{i}") for i in range(3)]
    rollout_id = _id("status-over-budget")
    # All three are in flight at once, so all fail before the halt could hold any back.
    rollout = spec(rollout_id, targets, window=3, max_failures=1)
    async with serve(_config(tag)) as sim, running_worker(client, task_queue, sim.url):
        await rollouts.start_rollout(client, rollout, task_queue=task_queue)
        report = await rollouts.wait_for_report(client, rollout_id)
        handle = rollouts.rollout_handle(client, rollout_id)
        described = await handle.describe()
        cause = await failure_of(handle)

    assert (report.state, report.failed, report.total) == (RolloutState.FAILED, 3, 3)
    assert described.status == WorkflowExecutionStatus.FAILED
    assert isinstance(cause, ApplicationError)
    assert cause.type == ROLLOUT_FAILED
    assert cause.message.startswith(
        "rollout failed: 3 of 3 targets failed, over the failure budget of 1;"
    )
    assert "\n" not in cause.message
    assert carried(cause, RolloutProgress) == report


async def _cancelled(client: Client, task_queue: str, *, by_update: bool) -> None:
    tag = uuid.uuid4().hex[:6]
    targets = [target(i) for i in range(4)]
    rollout_id = _id("status-cancelled")
    # One target at a time, each Creating for seconds: the cancel lands with most not started.
    rollout = spec(rollout_id, targets, window=1)
    async with (
        serve(_config(tag, create_seconds=1.5)) as sim,
        running_worker(client, task_queue, sim.url),
    ):
        await rollouts.start_rollout(client, rollout, task_queue=task_queue)
        handle = rollouts.rollout_handle(client, rollout_id)
        await progress_reaches(handle, lambda p: p.in_flight == 1, "the first target in flight")
        if by_update:
            await handle.execute_update(CANCEL_UPDATE, result_type=RolloutProgress)
        else:
            await handle.cancel()
        report = await rollouts.wait_for_report(client, rollout_id)
        described = await handle.describe()
        cause = await failure_of(handle)
        again = await rollouts.progress(client, rollout_id)

    assert described.status == WorkflowExecutionStatus.CANCELED
    assert isinstance(cause, CancelledError)
    assert report.state == RolloutState.CANCELLED
    assert report.cancelled >= 2
    assert report.created + report.cancelled == 4
    # After it closed, the report is still there for `status` and `report`.
    assert again == report


async def test_a_rollout_cancelled_by_its_update_ends_canceled(
    client: Client, task_queue: str
) -> None:
    await _cancelled(client, task_queue, by_update=True)


async def test_a_rollout_cancelled_from_temporal_ends_canceled(
    client: Client, task_queue: str
) -> None:
    await _cancelled(client, task_queue, by_update=False)


async def test_a_cancel_while_a_page_of_targets_loads_ends_canceled(
    client: Client, task_queue: str
) -> None:
    rollout_id = _id("page-cancel")
    fleet = [target(700 + i) for i in range(6)]
    # The pages are stored on a task queue no worker polls, so that the rollout's first page
    # load (the real activity) waits for them: the cancel arrives while it is in flight.
    await rollouts.store_pages(client, rollout_id, fleet, f"{task_queue}-unpolled", 3)
    async with serve(_config("pc")) as sim, running_worker(client, task_queue, sim.url):
        await rollouts.start_rollout(
            client, spec(rollout_id, fleet), task_queue=task_queue, page_size=3
        )
        handle = rollouts.rollout_handle(client, rollout_id)
        await _listed(
            client,
            f'WorkflowId = "{handle.id}" AND ExecutionStatus = "Running"',
            1,
        )

        async def loading() -> bool:
            desc = await handle.describe()
            return any(
                a.activity_type.name == "load_target_page"
                for a in desc.raw_description.pending_activities
            )

        await eventually_value(loading, bool, 30, "the rollout waits for its first page")
        await handle.cancel()
        cause = await failure_of(handle)
        desc = await handle.describe()
        report = await rollouts.final_report(handle)  # the closed run's progress: a worker's
        posts = sum(sim.state.stats.posts(t.project_id, t.mesh_name) for t in fleet)
        # The abandoned page load still waits for its page; ended, the worker stops at once.
        for page_no in range(2):
            await client.get_workflow_handle(page_workflow_id(rollout_id, page_no)).terminate()

    assert desc.status == WorkflowExecutionStatus.CANCELED, cause
    assert isinstance(cause, CancelledError)
    assert (report.state, report.cancelled, report.created) == (RolloutState.CANCELLED, 6, 0)
    assert posts == 0
