"""``await_target`` against the real dev server: it gives its slot back while a target runs."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.testing import ActivityEnvironment

from activities import targets
from activities.targets import TargetWatchActivities
from meshfleet.contract import failures as errors
from meshfleet.contract.payloads import AwaitTargetInput


async def test_a_running_target_is_looked_at_again_and_a_terminated_one_fails(
    client: Client,
) -> None:
    # A workflow no worker polls for stays Running: a stand-in for a mesh still being created.
    workflow_id = f"mesh/ap-southeast-3/{'0' * 32}/await-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(
        "CreateMeshWorkflow", id=workflow_id, task_queue=f"nobody-{uuid.uuid4()}"
    )
    watch = TargetWatchActivities(client, slice_s=0.5)
    env = ActivityEnvironment()
    inp = AwaitTargetInput(workflow_id=workflow_id, run_id=handle.first_execution_run_id)

    with pytest.raises(ApplicationError) as running:
        await env.run(watch.await_target, inp)
    assert running.value.type == errors.TARGET_STILL_RUNNING
    assert not running.value.non_retryable
    assert running.value.category == ApplicationErrorCategory.BENIGN

    await handle.terminate("operator gave up")
    with pytest.raises(ApplicationError) as ended:
        await env.run(watch.await_target, inp)
    assert (ended.value.type, ended.value.non_retryable) == ("TerminatedError", True)
    assert "terminated" in ended.value.message

    gone = AwaitTargetInput(workflow_id=f"{workflow_id}-never", run_id=None)
    with pytest.raises(ApplicationError) as vanished:
        await env.run(watch.await_target, gone)
    assert (vanished.value.type, vanished.value.non_retryable) == (errors.TARGET_VANISHED, True)


async def test_a_stopping_worker_gives_the_wait_back_at_once(client: Client) -> None:
    # A worker stopping with SIGTERM drains its activities; a wait on a target that runs on
    # must end then (retryable), not hold the restart up for its 30 s slice.
    workflow_id = f"mesh/ap-southeast-3/{'0' * 32}/stop-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(
        "CreateMeshWorkflow", id=workflow_id, task_queue=f"nobody-{uuid.uuid4()}"
    )
    env = ActivityEnvironment()
    inp = AwaitTargetInput(workflow_id=workflow_id, run_id=handle.first_execution_run_id)
    waiting = asyncio.ensure_future(env.run(TargetWatchActivities(client).await_target, inp))
    await asyncio.sleep(0)  # let the wait begin before the worker stops
    env.worker_shutdown()
    with pytest.raises(ApplicationError) as stopped:
        # Far inside the 30 s slice: only the shutdown can have ended it.
        await asyncio.wait_for(waiting, targets.AWAIT_SLICE_S / 3)
    assert (stopped.value.type, stopped.value.non_retryable) == (errors.TARGET_STILL_RUNNING, False)
    await handle.terminate("test over")
