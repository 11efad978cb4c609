"""Scenario 8: SIGTERM during a rollout: the worker drains and exits in its grace period; another
worker resumes with nothing lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from meshfleet import rollouts
from meshfleet.simulator.config import SimulatorConfig
from tests.helpers.audit import (
    assert_all_created_once,
    audit_rollout,
)
from tests.helpers.fleet import SIM_TOKEN, spec, target
from tests.helpers.processes import worker_env, worker_process
from tests.helpers.progress import creations, wait_for_creations
from tests.helpers.simulator_site import simulator_site

# What a process needs beyond the grace period to close its Temporal and HTTP connections.
EXIT_SLACK_S = 2.0


async def _terminate_and_resume(
    env: WorkflowEnvironment,
    client: Client,
    task_queue: str,
    tmp_path: Path,
    *,
    size: int,
    grace_s: float,
    terms: list[int],
    create_seconds: float,
) -> list[float]:
    """SIGTERM a worker each time ``terms`` creations are reached; the exit times in seconds."""
    rollout_id = f"sigterm-{size}-{grace_s:g}"
    fleet = [target(40_000 + i, f"term-{i:05d}") for i in range(size)]
    address = env.client.service_client.config.target_host
    exits: list[float] = []
    config = SimulatorConfig(create_seconds=create_seconds, tokens=(SIM_TOKEN,))
    async with simulator_site(config) as sim:
        environ = worker_env(
            address, task_queue, sim.url, MESHFLEET_GRACEFUL_SHUTDOWN=f"{grace_s:g}"
        )
        await rollouts.start_rollout(
            client, spec(rollout_id, fleet, window=20, timeout_s=120), task_queue=task_queue
        )
        for n, at in enumerate(terms):
            async with worker_process(client, environ, tmp_path / f"worker-{n}.log") as worker:
                await wait_for_creations(sim.state, at, 120)
                code, took = await worker.terminate(grace_s + 30)
                exits.append(took)
                assert code == 0, worker.log()[-3000:]
                assert "worker stopped" in worker.log()
            assert at <= creations(sim.state) < size
        async with worker_process(client, environ, tmp_path / "last.log"):
            report = await asyncio.wait_for(rollouts.wait_for_report(client, rollout_id), 180)

        audit = await audit_rollout(client, rollout_id, size)
        assert_all_created_once(report, audit, sim.state, fleet)
    print(f"exits after SIGTERM with a grace of {grace_s:g} s: {[round(t, 2) for t in exits]}")
    for took in exits:
        assert took <= grace_s + EXIT_SLACK_S
    return exits


async def test_sigterm_drains_within_the_grace_period_and_another_worker_resumes(
    temporal_env: WorkflowEnvironment, client: Client, task_queue: str, tmp_path: Path
) -> None:
    # Meshes stay Creating for 3 s: at the signal, polls are in flight that outlast the grace.
    await _terminate_and_resume(
        temporal_env,
        client,
        task_queue,
        tmp_path,
        size=60,
        grace_s=2,
        terms=[30],
        create_seconds=3,
    )


@pytest.mark.chaos
async def test_rolling_restarts_of_workers_lose_nothing(
    temporal_env: WorkflowEnvironment, client: Client, task_queue: str, tmp_path: Path
) -> None:
    # A rolling deployment: five workers in turn, each stopped with SIGTERM mid-rollout.
    await _terminate_and_resume(
        temporal_env,
        client,
        task_queue,
        tmp_path,
        size=400,
        grace_s=5,
        terms=[40, 110, 180, 250, 320],
        create_seconds=2,
    )
