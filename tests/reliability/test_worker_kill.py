"""Scenario 1: kill -9 the worker mid-rollout, start a new one: nothing twice, nothing lost."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from meshfleet import rollouts
from meshfleet.simulator.config import SimulatorConfig
from tests.helpers.audit import (
    assert_all_created_once,
    assert_created_once,
    assert_reported_once,
    audit_rollout,
)
from tests.helpers.eventually import eventually
from tests.helpers.fleet import SIM_TOKEN, spec, target
from tests.helpers.processes import worker_env, worker_process
from tests.helpers.progress import creations, wait_for_creations
from tests.helpers.simulator_site import simulator_site

# create_mesh is a local activity: a POST killed with its worker is run again by the next worker
# once the dead worker's workflow task times out (10 s), and its 409 finds the mesh the first POST
# made, created after the target started, so ours (docs/asm-api.md, "409: adopt or conflict").


async def test_worker_killed_with_creates_in_flight_in_a_rollout_of_200(
    temporal_env: WorkflowEnvironment, client: Client, task_queue: str, tmp_path: Path
) -> None:
    size = 200
    fleet = [target(10_000 + i, f"kill-{i:05d}") for i in range(size)]
    address = temporal_env.client.service_client.config.target_host
    async with simulator_site(SimulatorConfig(create_seconds=0.3, tokens=(SIM_TOKEN,))) as sim:
        environ = worker_env(address, task_queue, sim.url)
        await rollouts.start_rollout(
            client, spec("kill-200", fleet, window=25, timeout_s=20), task_queue=task_queue
        )
        async with worker_process(client, environ, tmp_path / "first.log") as first:
            await wait_for_creations(sim.state, 70, 90)
            # Strike at the worst moment: POSTs the server has received but not yet answered.
            sim.hold()
            await eventually(lambda: sim.held >= 3, 30, "3 creates in flight")
            assert first.kill() == -signal.SIGKILL
        held = set(sim.held_names)
        # The held POSTs now complete on the server: meshes created, answers lost with the worker.
        sim.release()
        await eventually(lambda: sim.held == 0, 10, "held creates done")
        assert 70 <= creations(sim.state) < size

        killed = time.monotonic()
        async with worker_process(client, environ, tmp_path / "second.log"):
            report = await asyncio.wait_for(rollouts.wait_for_report(client, "kill-200"), 120)
        audit = await audit_rollout(client, "kill-200", size)
        print(
            f"report {time.monotonic() - killed:.1f} s after the kill; slowest target "
            f"{audit.slowest_s:.1f} s; creates killed in flight: {len(held)}"
        )
        assert_reported_once(report, audit, fleet)
        stats = sim.state.stats
        # Nothing was created twice, whatever became of the answers.
        assert all(stats.creations(t.project_id, t.mesh_name) <= 1 for t in fleet)
        # The held POSTs did land: their meshes exist although no worker heard the 201.
        assert all(stats.creations(project, name) == 1 for project, name in held)
        # Every target reported as Running is, once.
        assert_created_once(
            sim.state, [t for t in fleet if audit.outcomes[t.workflow_id].succeeded]
        )
        assert (report.created, report.adopted, report.failed) == (size, 0, 0), report.failures
        assert_created_once(sim.state, fleet)


@pytest.mark.chaos
async def test_worker_killed_three_times_during_a_paged_rollout_of_1000(
    temporal_env: WorkflowEnvironment, client: Client, task_queue: str, tmp_path: Path
) -> None:
    # 1000 targets travel in stored pages (more than INLINE_TARGETS_MAX), so page loads are in
    # the blast radius too; kills land wherever the rollout happens to be.
    size = 1000
    fleet = [target(20_000 + i, f"kill-{i:05d}") for i in range(size)]
    address = temporal_env.client.service_client.config.target_host
    async with simulator_site(SimulatorConfig(create_seconds=0.3, tokens=(SIM_TOKEN,))) as sim:
        environ = worker_env(address, task_queue, sim.url)
        await rollouts.start_rollout(
            client, spec("kill-1000", fleet, window=50, timeout_s=600), task_queue=task_queue
        )
        for n, at in enumerate((150, 450, 800)):
            async with worker_process(client, environ, tmp_path / f"worker-{n}.log") as worker:
                await wait_for_creations(sim.state, at, 400)
                assert worker.kill() == -signal.SIGKILL
            assert at <= creations(sim.state) < size
        async with worker_process(client, environ, tmp_path / "last.log"):
            report = await asyncio.wait_for(rollouts.wait_for_report(client, "kill-1000"), 600)

        audit = await audit_rollout(client, "kill-1000", size)
        print(f"{size} targets in {report.seconds:.1f} s; slowest {audit.slowest_s:.1f} s")
        assert_all_created_once(report, audit, sim.state, fleet)
