"""``delete_mesh`` and ``wait_for_mesh_gone`` over real HTTP against the simulator.

Meshes are created by real POSTs; what the simulator counts (DELETEs per uid) and lists is what
the assertions hold to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.deletion import DeletionActivities
from meshfleet.asm.auth import StaticTokenAuth
from meshfleet.asm.client import AsmClient
from meshfleet.contract import failures as errors
from meshfleet.contract.deletion import DeleteMeshActivityInput, WaitGoneInput
from meshfleet.models import MeshTarget
from meshfleet.simulator.config import FaultConfig, SimulatorConfig
from meshfleet.simulator.testing import RunningSimulator, serve
from tests.helpers.fleet import SIM_TOKEN, target

DELETE_S = 0.3


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    faults = FaultConfig(rules=["stubborn-*=delete-failed"])
    config = SimulatorConfig(
        create_seconds=0, delete_seconds=DELETE_S, tokens=(SIM_TOKEN,), faults=faults
    )
    async with serve(config) as running:
        yield running


@pytest.fixture
async def api(sim: RunningSimulator) -> AsyncIterator[AsmClient]:
    async with AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=sim.url) as client:
        yield client


async def _create(api: AsmClient, t: MeshTarget) -> str:
    mesh = await api.create_mesh(t.project_id, t.region, t.to_request())
    assert mesh.uid is not None
    return mesh.uid


def _delete_input(t: MeshTarget, uid: str) -> DeleteMeshActivityInput:
    return DeleteMeshActivityInput(
        rollout_id="r1", project_id=t.project_id, region=t.region, mesh_name=t.mesh_name, uid=uid
    )


def _wait_input(t: MeshTarget, uid: str, deadline_s: float = 30) -> WaitGoneInput:
    deadline = datetime.now(UTC) + timedelta(seconds=deadline_s)
    return WaitGoneInput(
        rollout_id="r1",
        project_id=t.project_id,
        region=t.region,
        mesh_name=t.mesh_name,
        uid=uid,
        first_poll_s=0.05,
        poll_interval_s=0.05,
        deadline=deadline.isoformat(),
    )


async def test_a_created_mesh_is_deleted_once_and_polled_until_gone(
    sim: RunningSimulator, api: AsmClient
) -> None:
    t = target(1)
    uid = await _create(api, t)
    activities = DeletionActivities(api)
    env = ActivityEnvironment()

    started = await env.run(activities.delete_mesh, _delete_input(t, uid))
    gone = await env.run(activities.wait_for_mesh_gone, _wait_input(t, uid))

    assert (started.verdict, started.phase) == ("deleting", "Deleting")
    assert gone.polls >= 2  # Deleting at least once, then 404
    assert sim.state.find_mesh(t.project_id, t.mesh_name) is None
    assert sim.state.stats.deletes(uid) == 1


async def test_a_mesh_gone_already_is_success(sim: RunningSimulator, api: AsmClient) -> None:
    t = target(2)
    uid = await _create(api, t)
    await api.delete_mesh(t.project_id, t.region, uid)
    env = ActivityEnvironment()
    activities = DeletionActivities(api)
    await env.run(activities.wait_for_mesh_gone, _wait_input(t, uid))

    again = await env.run(activities.delete_mesh, _delete_input(t, uid))
    assert (again.verdict, again.reason) == ("gone", None)


async def test_a_mesh_re_created_under_its_name_is_kept(
    sim: RunningSimulator, api: AsmClient
) -> None:
    t = target(3)
    old = await _create(api, t)
    await api.delete_mesh(t.project_id, t.region, old)
    env = ActivityEnvironment()
    activities = DeletionActivities(api)
    await env.run(activities.wait_for_mesh_gone, _wait_input(t, old))
    new = await _create(api, t)  # by hand, after the rollout

    kept = await env.run(activities.delete_mesh, _delete_input(t, old))

    assert kept.verdict == "kept"
    assert kept.reason is not None and new in kept.reason and "re-created" in kept.reason
    record = sim.state.find_mesh(t.project_id, t.mesh_name)
    assert record is not None and record.uid == new
    assert sim.state.stats.deletes(new) == 0


async def test_delete_failed_is_a_failure_with_its_phase(
    sim: RunningSimulator, api: AsmClient
) -> None:
    t = target(4, "stubborn-4")
    uid = await _create(api, t)
    env = ActivityEnvironment()
    activities = DeletionActivities(api)
    await env.run(activities.delete_mesh, _delete_input(t, uid))
    with pytest.raises(ApplicationError) as failed:
        await env.run(activities.wait_for_mesh_gone, _wait_input(t, uid))
    assert (failed.value.type, failed.value.non_retryable) == (errors.MESH_FAILED, True)
    assert "DeleteFailed" in str(failed.value)
    assert sim.state.find_mesh(t.project_id, t.mesh_name) is not None


async def test_a_mesh_still_deleting_at_its_deadline_times_out(
    sim: RunningSimulator, api: AsmClient
) -> None:
    t = target(5)
    uid = await _create(api, t)
    env = ActivityEnvironment()
    activities = DeletionActivities(api)
    await env.run(activities.delete_mesh, _delete_input(t, uid))
    with pytest.raises(ApplicationError) as failed:
        await env.run(activities.wait_for_mesh_gone, _wait_input(t, uid, deadline_s=0.1))
    assert (failed.value.type, failed.value.non_retryable) == (errors.MESH_TIMEOUT, True)


async def test_a_throttled_delete_is_retried_after_retry_after(
    sim: RunningSimulator, api: AsmClient
) -> None:
    t = target(6)
    uid = await _create(api, t)
    sim.state.update_faults(fail_429=1.0, retry_after=7)
    activities = DeletionActivities(api)
    with pytest.raises(ApplicationError) as throttled:
        await ActivityEnvironment().run(activities.delete_mesh, _delete_input(t, uid))
    assert not throttled.value.non_retryable
    assert throttled.value.next_retry_delay == timedelta(seconds=7)
    assert sim.state.stats.deletes(uid) == 0  # refused before it reached the mesh
