"""A worker killed mid-poll: the poll resumes on another worker from its last heartbeat."""

from __future__ import annotations

import asyncio
import signal

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from meshfleet import rollouts
from meshfleet.models import RolloutState, TargetOutcome
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.testing import serve
from tests.helpers.eventually import eventually
from tests.helpers.fleet import SIM_TOKEN, running_worker, spec, target
from tests.helpers.processes import spawn_worker


async def test_killed_worker_poll_resumes_from_heartbeat(
    temporal_env: WorkflowEnvironment, client: Client, task_queue: str
) -> None:
    mesh = target(600)
    config = SimulatorConfig(create_seconds=6.0, tokens=(SIM_TOKEN,))
    async with serve(config) as sim:
        proc = spawn_worker(temporal_env, task_queue, sim.url)
        try:
            await rollouts.start_rollout(
                client,
                spec("crash", [mesh], first_poll_s=0.3, poll_interval_s=0.3, heartbeat_timeout_s=1),
                task_queue=task_queue,
            )
            await eventually(
                lambda: sim.state.stats.requests["show"] >= 4, 60, "4 polls of the mesh"
            )
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
            shows_at_kill = sim.state.stats.requests["show"]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

        async with running_worker(client, task_queue, sim.url):
            report = await asyncio.wait_for(rollouts.wait_for_report(client, "crash"), 60)
            outcome: TargetOutcome = await client.get_workflow_handle(
                mesh.workflow_id, result_type=TargetOutcome
            ).result()

        assert (report.state, report.created) == (RolloutState.COMPLETED, 1)
        assert sim.state.stats.posts(mesh.project_id, mesh.mesh_name) == 1
        assert sim.state.stats.creations(mesh.project_id, mesh.mesh_name) == 1
        shows_after_kill = sim.state.stats.requests["show"] - shows_at_kill
        # The new attempt counted on from the dead worker's heartbeat instead of starting at 0.
        assert outcome.polls > shows_after_kill
        assert outcome.outcome == "created" and outcome.phase == "Running"
