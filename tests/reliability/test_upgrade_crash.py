"""kill -9 the worker in the middle of a mesh's pre-check, start another: no mesh gets a second
upgrade task.

The production worker runs as a process. ASM names an upgrade task's id only in the create's
201, so what the next worker can do depends on whether the dead one got that far:

- it did: ``create_upgrade_task`` returned the id, and the retry of the pre-check's
  ``upgrade_step`` (which heartbeats it too) goes on with that task, through the upgrade and the
  finalize;
- the 201 never arrived (the POST was still held when the worker died): the retry meets 409 and
  cannot tell whose task holds the mesh, so the target fails ``UpgradeTaskUnknown`` and leaves
  the task to the operator rather than create a second one.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import Sequence
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from meshfleet import rollouts
from meshfleet.contract.failures import UPGRADE_TASK_UNKNOWN
from meshfleet.contract.payloads import CREATE_UPGRADE_TASK, UPGRADE_STEP
from meshfleet.contract.upgrade import UpgradeStepProgress
from meshfleet.models import MeshTarget, RolloutProgress, RolloutState
from meshfleet.simulator.config import FaultConfig, SimulatorConfig
from meshfleet.simulator.state import SimulatorState
from tests.helpers.eventually import NotYetError, eventually, eventually_value
from tests.helpers.fleet import SIM_TOKEN, spec, target
from tests.helpers.processes import worker_env, worker_process
from tests.helpers.simulator_site import SimulatorSite, simulator_site

OLD = "1.15.7-r3"
NEW = "1.18.7-r5"
MESHES = 4
# Every step of a task runs this long: the pre-check still runs well after its 201.
STEP_S = 3.0
# How soon a retry of a dead worker's attempt starts elsewhere.
HEARTBEAT_TIMEOUT_S = 2
# Steps of ASM's task other than the pre-check that a create starts.
LATER_STEPS = ("controlPlane", "dataPlane", "finish", "rollback")


def _fleet(prefix: str) -> list[MeshTarget]:
    tag = uuid.uuid4().hex[:6]
    return [
        target(40_000 + i, f"{prefix}-{tag}-{i:02d}").model_copy(update={"version": NEW})
        for i in range(MESHES)
    ]


def _seed(sim: SimulatorSite, fleet: Sequence[MeshTarget]) -> dict[str, str]:
    """Every mesh at the old version; mesh name -> uid."""
    return {
        t.mesh_name: sim.state.seed_mesh(t.project_id, t.mesh_name, [t.cluster_id], version=OLD).uid
        for t in fleet
    }


def _tasks_by_mesh(state: SimulatorState) -> dict[str, list[str]]:
    """mesh uid -> the ids of its upgrade tasks, as the simulator made them."""
    found: dict[str, list[str]] = {}
    for task in state.all_upgrades():
        found.setdefault(task.mesh_uid, []).append(task.uid)
    return found


async def _start(
    client: Client, task_queue: str, rollout_id: str, fleet: list[MeshTarget], **strategy: object
) -> None:
    values: dict[str, object] = {
        "existing": "converge",
        "window": len(fleet),
        "waves": ["100%"],
        "verify": {},
        "heartbeat_timeout_s": HEARTBEAT_TIMEOUT_S,
        "timeout_s": 60,
    }
    values.update(strategy)
    started = await rollouts.start_rollout(
        client, spec(rollout_id, fleet, **values), task_queue=task_queue
    )
    assert started.started


async def _heartbeated_task_ids(client: Client, fleet: Sequence[MeshTarget]) -> dict[str, str]:
    """mesh name -> the task id its pending ``upgrade_step`` heartbeated, once every mesh has one
    on record at the server (what a retry on another worker would be given)."""
    seen: dict[str, str] = {}
    for t in fleet:
        description = await client.get_workflow_handle(t.workflow_id).describe()
        pending = [
            a
            for a in description.raw_description.pending_activities
            if a.activity_type.name == UPGRADE_STEP
        ]
        payloads = [p for a in pending for p in a.heartbeat_details.payloads]
        if not payloads:
            raise NotYetError(f"{t.mesh_name}: no upgrade_step heartbeat on record yet")
        progress = UpgradeStepProgress.model_validate(json.loads(payloads[0].data))
        if progress.task_id is None:
            raise NotYetError(f"{t.mesh_name}: heartbeat without a task id yet")
        seen[t.mesh_name] = progress.task_id
    return seen


async def _creates_pending(client: Client, fleet: Sequence[MeshTarget]) -> bool:
    """Every mesh's ``create_upgrade_task`` is pending (its answer not yet in), no details
    heartbeated."""
    for t in fleet:
        description = await client.get_workflow_handle(t.workflow_id).describe()
        pending = [
            a
            for a in description.raw_description.pending_activities
            if a.activity_type.name == CREATE_UPGRADE_TASK
        ]
        if len(pending) != 1 or pending[0].heartbeat_details.payloads:
            return False
    return True


async def _activity_failures(client: Client, workflow_id: str) -> list[tuple[str, int]]:
    """Each failed activity of the mesh's workflow: its failure type, and which attempt failed
    it (the history keeps an activity's last attempt only)."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    attempts = {
        e.event_id: e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    }
    return [
        (
            failed.failure.application_failure_info.type,
            attempts.get(failed.started_event_id, 0),
        )
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
        for failed in (e.activity_task_failed_event_attributes,)
    ]


async def _step_attempts(
    client: Client, workflow_id: str, run_id: str
) -> list[tuple[str, int, str]]:
    """Each ``upgrade_step`` the run completed: its step, the attempt that completed it and the
    identity of that attempt's worker."""
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    steps: dict[int, str] = {}
    started: dict[int, tuple[int, str]] = {}
    done: list[tuple[str, int, str]] = []
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled = e.activity_task_scheduled_event_attributes
            if scheduled.activity_type.name == UPGRADE_STEP:
                steps[e.event_id] = json.loads(scheduled.input.payloads[0].data)["step"]
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = e.activity_task_started_event_attributes
            started[e.event_id] = (attrs.attempt, attrs.identity)
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            completed = e.activity_task_completed_event_attributes
            if completed.scheduled_event_id in steps:
                attempt, identity = started[completed.started_event_id]
                done.append((steps[completed.scheduled_event_id], attempt, identity))
    return done


async def _report(client: Client, rollout_id: str) -> RolloutProgress:
    return await asyncio.wait_for(rollouts.wait_for_report(client, rollout_id, interval_s=0.2), 90)


async def test_worker_killed_after_the_create_answered_goes_on_with_that_task(
    temporal_env: WorkflowEnvironment, client: Client, task_queue: str, tmp_path: Path
) -> None:
    fleet = _fleet("crash-upg")
    address = temporal_env.client.service_client.config.target_host
    config = SimulatorConfig(upgrade_step_seconds=STEP_S, tokens=(SIM_TOKEN,))
    async with simulator_site(config) as sim:
        uids = _seed(sim, fleet)
        stats = sim.state.stats
        environ = worker_env(address, task_queue, sim.url)
        rollout_id = f"crash-upg-{uuid.uuid4().hex[:6]}"
        await _start(client, task_queue, rollout_id, fleet)
        async with worker_process(client, environ, tmp_path / "first.log") as first:
            await eventually(
                lambda: all(stats.upgrade_tasks(uid) == 1 for uid in uids.values()),
                30,
                "every mesh has its upgrade task",
            )
            heartbeated = await eventually_value(
                lambda: _heartbeated_task_ids(client, fleet),
                lambda _: True,
                30,
                "every mesh's task id heartbeated",
                interval=0.1,
            )
            tasks = _tasks_by_mesh(sim.state)
            runs = {
                t.mesh_name: (await client.get_workflow_handle(t.workflow_id).describe()).run_id
                for t in fleet
            }
            assert first.kill() == -signal.SIGKILL
        # What was on record is the task the simulator made, nothing else.
        assert heartbeated == {t.mesh_name: tasks[uids[t.mesh_name]][0] for t in fleet}

        async with worker_process(client, environ, tmp_path / "second.log") as second:
            report = await _report(client, rollout_id)

        for t in fleet:
            # The kill fell inside the attempt that created the task: the pre-check was ended by
            # the next attempt, on the second worker, and every later step ran once.
            steps = await _step_attempts(client, t.workflow_id, runs[t.mesh_name])
            assert [(step, attempt) for step, attempt, _ in steps] == [
                ("pre_check", 2),
                ("control_plane", 1),
                ("data_plane", 1),
            ], steps
            assert all(identity.startswith(f"{second.pid}@") for _, _, identity in steps), steps

        assert report.state == RolloutState.COMPLETED, report.failures
        assert (report.upgraded, report.finalized, report.failed) == (MESHES, MESHES, 0)
        assert {u.mesh_name: u.task_id for u in report.upgrades} == heartbeated
        assert all(u.finalized and u.outcome == "finalized" for u in report.upgrades)
        now = sim.state.now()
        for t in fleet:
            uid = uids[t.mesh_name]
            assert stats.upgrade_tasks(uid) == 1, t.mesh_name
            assert stats.upgrade_posts(uid) == 1, t.mesh_name
            assert stats.upgrade_puts(uid, "finish") == 1, t.mesh_name
            assert stats.upgrade_puts(uid, "rollback") == 0, t.mesh_name
            found = sim.state.find_mesh(t.project_id, t.mesh_name)
            assert found is not None
            assert (found.spec_at(now).get("version"), str(found.phase(now))) == (NEW, "Running")


async def test_worker_killed_before_the_create_answered_fails_without_a_second_task(
    temporal_env: WorkflowEnvironment, client: Client, task_queue: str, tmp_path: Path
) -> None:
    fleet = _fleet("crash-upg-slow")
    tag = fleet[0].mesh_name.rsplit("-", 1)[0]
    address = temporal_env.client.service_client.config.target_host
    # The POST makes the task at once, then holds its 201 far past the kill.
    faults = FaultConfig(rules=[f"{tag}-*=upgrade-slow"], slow_upgrade_seconds=60)
    config = SimulatorConfig(upgrade_step_seconds=STEP_S, tokens=(SIM_TOKEN,), faults=faults)
    async with simulator_site(config) as sim:
        uids = _seed(sim, fleet)
        stats = sim.state.stats
        environ = worker_env(address, task_queue, sim.url)
        rollout_id = f"crash-upg-slow-{uuid.uuid4().hex[:6]}"
        await _start(client, task_queue, rollout_id, fleet, max_failures="100%")
        async with worker_process(client, environ, tmp_path / "first.log") as first:
            await eventually(
                lambda: all(stats.upgrade_tasks(uid) == 1 for uid in uids.values()),
                30,
                "every mesh has its upgrade task",
            )
            # The 201 is still held: no attempt could return the task's id.
            assert await _creates_pending(client, fleet)
            assert all(stats.upgrade_posts(uid) == 1 for uid in uids.values())
            assert first.kill() == -signal.SIGKILL
        tasks = _tasks_by_mesh(sim.state)

        async with worker_process(client, environ, tmp_path / "second.log"):
            report = await _report(client, rollout_id)

        assert report.state == RolloutState.COMPLETED, report
        assert (report.failed, report.upgraded, report.finalized) == (MESHES, 0, 0)
        assert report.upgrades == []
        assert {f.mesh_name for f in report.failures} == {t.mesh_name for t in fleet}
        for f in report.failures:
            message = f.message or ""
            assert "finish it or roll it back in the ASM console" in message, message
            assert "never creates a second task" in message, message
        for t in fleet:
            # The dead worker's attempt timed out; the next one, on the second worker, failed
            # for good and was not retried.
            failures = await _activity_failures(client, t.workflow_id)
            assert failures == [(UPGRADE_TASK_UNKNOWN, 2)], t.mesh_name
        assert _tasks_by_mesh(sim.state) == tasks
        now = sim.state.now()
        for t in fleet:
            uid = uids[t.mesh_name]
            # The retry's POST met the task the dead worker's POST made, and stopped there.
            assert stats.upgrade_tasks(uid) == 1, t.mesh_name
            assert stats.upgrade_posts(uid) == 2, t.mesh_name
            assert all(stats.upgrade_puts(uid, step) == 0 for step in LATER_STEPS), t.mesh_name
            found = sim.state.find_mesh(t.project_id, t.mesh_name)
            assert found is not None
            assert found.spec_at(now).get("version") == OLD, t.mesh_name
        # What the operator reads in the report names the failure, as the operations guide has it.
        assert {f.error_code for f in report.failures} == {UPGRADE_TASK_UNKNOWN}, report.failures
