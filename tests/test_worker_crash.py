"""A worker killed mid-poll: the poll resumes on another worker from its last heartbeat."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from meshfleet import rollouts
from meshfleet.models import RolloutState, TargetOutcome
from simulator.config import SimulatorConfig
from simulator.testing import serve
from tests.fleet import SIM_TOKEN, running_worker, spec, target

ROOT = Path(__file__).resolve().parent.parent


def worker_process(
    env: WorkflowEnvironment, task_queue: str, asm_url: str, **extra_env: str
) -> subprocess.Popen[bytes]:
    """The production worker (``python worker.py``) as its own process."""
    environ = {
        **os.environ,
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": "default",
        "MESHFLEET_TASK_QUEUE": task_queue,
        "ASM_ENDPOINT": asm_url,
        "ASM_AUTH_TOKEN": SIM_TOKEN,
        "MESHFLEET_LOG_FORMAT": "json",
        **extra_env,
    }
    return subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py")],
        env=environ,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_killed_worker_poll_resumes_from_heartbeat(
    temporal_env: WorkflowEnvironment, client: Client, task_queue: str
) -> None:
    mesh = target(600)
    config = SimulatorConfig(create_seconds=6.0, tokens=(SIM_TOKEN,))
    async with serve(config) as sim:
        proc = worker_process(temporal_env, task_queue, sim.url)
        try:
            await rollouts.start_rollout(
                client,
                spec("crash", [mesh], first_poll_s=0.3, poll_interval_s=0.3, heartbeat_timeout_s=1),
                task_queue=task_queue,
            )
            async with asyncio.timeout(60):
                while sim.state.stats.requests["show"] < 4:
                    await asyncio.sleep(0.05)
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
