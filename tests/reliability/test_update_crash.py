"""kill -9 the worker while its PUTs are in flight, start another: no mesh gets a second PUT.

The production worker runs as a process; the simulator holds the PUTs at its door, then lets
them land once the worker is dead, so their answers are lost with it. The next worker's retry of
``update_mesh`` reads each mesh first: its ``status.updateTimestamp`` moved, so the change is
known to have landed and is not sent again.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from meshfleet import rollouts
from meshfleet.drift import config_changes, wanted_config
from meshfleet.models import RolloutState
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.stats import UPDATE
from tests.helpers.eventually import eventually
from tests.helpers.fleet import SIM_TOKEN, spec, target
from tests.helpers.processes import worker_env, worker_process
from tests.helpers.simulator_site import simulator_site

WANTED = {"telemetryConfig": {"tracing": {"randomSamplingPercentage": 10}}}
OLD = {"telemetryConfig": {"tracing": {"randomSamplingPercentage": 1}}}


async def test_worker_killed_with_puts_in_flight_sends_none_twice(
    temporal_env: WorkflowEnvironment, client: Client, task_queue: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    fleet = [
        target(30_000 + i, f"crash-put-{tag}-{i:02d}").model_copy(update={"config": WANTED})
        for i in range(6)
    ]
    address = temporal_env.client.service_client.config.target_host
    config = SimulatorConfig(update_seconds=0.3, tokens=(SIM_TOKEN,))
    async with simulator_site(config) as sim:
        uids = {
            t.mesh_name: sim.state.seed_mesh(
                t.project_id, t.mesh_name, [t.cluster_id], config=OLD
            ).uid
            for t in fleet
        }
        environ = worker_env(address, task_queue, sim.url)
        rollout_id = f"crash-put-{tag}"
        sim.hold(UPDATE)
        await rollouts.start_rollout(
            client,
            spec(rollout_id, fleet, existing="converge", window=6, timeout_s=60),
            task_queue=task_queue,
        )
        async with worker_process(client, environ, tmp_path / "first.log") as first:
            await eventually(lambda: sim.held >= 3, 30, "3 PUTs in flight")
            assert first.kill() == -signal.SIGKILL
        held = sim.held
        # The held PUTs now reach the handler: they land, and nobody hears the answers.
        sim.release()
        await eventually(lambda: sim.held == 0, 10, "held PUTs done")
        async with worker_process(client, environ, tmp_path / "second.log"):
            report = await asyncio.wait_for(rollouts.wait_for_report(client, rollout_id), 120)

        stats = sim.state.stats
        assert held >= 3
        assert report.state == RolloutState.COMPLETED
        assert report.updated == len(fleet), report.failures
        assert all(stats.updates(uids[t.mesh_name]) == 1 for t in fleet), {
            t.mesh_name: stats.updates(uids[t.mesh_name]) for t in fleet
        }
        for t in fleet:
            found = sim.state.find_mesh(t.project_id, t.mesh_name)
            assert found is not None
            echoed = found.spec_at(sim.state.now()).get("config")
            assert not config_changes(wanted_config(t), echoed)
