"""Scenario 2: two worker processes share a task queue; one is killed; the other finishes."""

from __future__ import annotations

import asyncio
import json
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from meshfleet import rollouts
from meshfleet.contract.payloads import CREATE_MESH_WORKFLOW, WAIT_FOR_MESH
from meshfleet.simulator.config import SimulatorConfig
from tests.helpers.audit import (
    assert_all_created_once,
    audit_rollout,
)
from tests.helpers.eventually import eventually_value
from tests.helpers.fleet import SIM_TOKEN, spec, target
from tests.helpers.processes import worker_env, worker_process
from tests.helpers.progress import creations, wait_for_creations
from tests.helpers.simulator_site import simulator_site


@dataclass(frozen=True)
class PendingActivity:
    """An activity of a running child, and the worker that last took it."""

    workflow_id: str
    activity: str
    worker: str


async def pending_activities(client: Client, rollout_id: str) -> dict[str, list[PendingActivity]]:
    """The pending activities of every running child of the rollout, by child workflow id."""
    query = (
        f'MeshRolloutId = "{rollout_id}" AND WorkflowType = "{CREATE_MESH_WORKFLOW}" '
        'AND ExecutionStatus = "Running"'
    )
    found: dict[str, list[PendingActivity]] = {}
    async for child in client.list_workflows(query):
        desc = await client.get_workflow_handle(child.id).describe()
        if desc.status != WorkflowExecutionStatus.RUNNING:
            continue
        found[child.id] = [
            PendingActivity(child.id, p.activity_type.name, p.last_worker_identity)
            for p in desc.raw_description.pending_activities
        ]
    return found


async def _only_polls_pending(client: Client, rollout_id: str) -> None:
    # Paused: no new target starts. Wait until every running target is in its poll: a target
    # between two steps (or not yet at its first) could still send a POST.
    def only_polls(running: dict[str, list[PendingActivity]]) -> bool:
        return bool(running) and all(
            [p.activity for p in pending] == [WAIT_FOR_MESH] for pending in running.values()
        )

    await eventually_value(
        lambda: pending_activities(client, rollout_id),
        only_polls,
        60,
        "every running target in its poll",
        interval=0.2,
    )


def _taken_over(log: str) -> set[str]:
    """Mesh names this worker saw Running in a retried poll (an attempt after the first)."""
    names = set()
    for line in log.splitlines():
        if line.startswith("{") and '"mesh running"' in line:
            event = json.loads(line)
            if event["attempt"] > 1:
                names.add(event["mesh_name"])
    return names


async def test_the_surviving_worker_takes_over_the_killed_workers_polls(
    temporal_env: WorkflowEnvironment, client: Client, task_queue: str, tmp_path: Path
) -> None:
    size = 60
    fleet = [target(50_000 + i, f"pair-{i:05d}") for i in range(size)]
    address = temporal_env.client.service_client.config.target_host
    async with simulator_site(SimulatorConfig(create_seconds=3, tokens=(SIM_TOKEN,))) as sim:
        environ = worker_env(address, task_queue, sim.url)
        async with (
            worker_process(client, environ, tmp_path / "a.log") as doomed,
            worker_process(client, environ, tmp_path / "b.log") as survivor,
        ):
            await rollouts.start_rollout(
                client, spec("pair", fleet, window=20, timeout_s=120), task_queue=task_queue
            )
            await wait_for_creations(sim.state, 25, 60)
            await rollouts.pause(client, "pair")
            # The kill lands while the doomed worker holds mesh polls, not POSTs: a POST killed
            # in flight is scenario 1's subject.
            await _only_polls_pending(client, "pair")
            assert doomed.kill() == -signal.SIGKILL
            # Read after the kill: what the dead worker held can no longer complete meanwhile.
            pending = [p for ps in (await pending_activities(client, "pair")).values() for p in ps]
            held = {
                p.workflow_id
                for p in pending
                if p.activity == WAIT_FOR_MESH and p.worker.startswith(f"{doomed.pid}@")
            }
            assert held, f"the doomed worker held none of {pending}"
            assert creations(sim.state) < size
            await rollouts.resume(client, "pair")
            report = await asyncio.wait_for(rollouts.wait_for_report(client, "pair"), 120)
            assert survivor.proc.poll() is None

        audit = await audit_rollout(client, "pair", size)
        assert_all_created_once(report, audit, sim.state, fleet)
        # The survivor finished, in a retried attempt, each poll the dead worker held.
        assert {wid.rsplit("/", 1)[1] for wid in held} <= _taken_over(survivor.log())


@pytest.mark.chaos
async def test_three_workers_two_killed_at_random_moments(
    temporal_env: WorkflowEnvironment, client: Client, task_queue: str, tmp_path: Path
) -> None:
    # No pause: kills land on POSTs too (re-sent after the 10 s workflow task timeout).
    size = 500
    fleet = [target(60_000 + i, f"trio-{i:05d}") for i in range(size)]
    address = temporal_env.client.service_client.config.target_host
    async with simulator_site(SimulatorConfig(create_seconds=1, tokens=(SIM_TOKEN,))) as sim:
        environ = worker_env(address, task_queue, sim.url)
        async with (
            worker_process(client, environ, tmp_path / "a.log") as first,
            worker_process(client, environ, tmp_path / "b.log") as second,
            worker_process(client, environ, tmp_path / "c.log") as last,
        ):
            await rollouts.start_rollout(
                client, spec("trio", fleet, window=60, timeout_s=600), task_queue=task_queue
            )
            await wait_for_creations(sim.state, 120, 300)
            assert first.kill() == -signal.SIGKILL
            await wait_for_creations(sim.state, 300, 300)
            assert second.kill() == -signal.SIGKILL
            report = await asyncio.wait_for(rollouts.wait_for_report(client, "trio"), 600)
            assert last.proc.poll() is None

        audit = await audit_rollout(client, "trio", size)
        print(f"{size} targets in {report.seconds:.1f} s; slowest {audit.slowest_s:.1f} s")
        assert_all_created_once(report, audit, sim.state, fleet)
