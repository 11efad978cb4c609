"""The worker as operators run it: a process with metrics endpoints that stops on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import subprocess

import aiohttp
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from meshfleet import rollouts
from meshfleet.models import RolloutState
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.testing import serve
from tests.helpers.fleet import SIM_TOKEN, spec, target
from tests.helpers.ports import free_port
from tests.helpers.processes import spawn_worker

# Far below the worker's default 30 s drain (MESHFLEET_GRACEFUL_SHUTDOWN): an idle worker that
# takes longer is not honouring SIGTERM promptly.
STOP_LIMIT_S = 15


async def scrape(http: aiohttp.ClientSession, port: int) -> str:
    async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
        return await response.text()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample whose labels include ``labels``."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{labels} in:\n{text}")


async def test_worker_process_serves_metrics_and_stops_on_sigterm(
    temporal_env: WorkflowEnvironment, client: Client, task_queue: str
) -> None:
    ours, sdk = free_port(), free_port()
    fleet = [target(900 + i) for i in range(3)]
    async with serve(SimulatorConfig(create_seconds=0.2, tokens=(SIM_TOKEN,))) as sim:
        proc = spawn_worker(
            temporal_env,
            task_queue,
            sim.url,
            MESHFLEET_METRICS_PORT=str(ours),
            MESHFLEET_SDK_METRICS_PORT=str(sdk),
        )
        try:
            await rollouts.start_rollout(client, spec("metrics", fleet), task_queue=task_queue)
            report = await asyncio.wait_for(rollouts.wait_for_report(client, "metrics"), 60)
            assert (report.state, report.created) == (RolloutState.COMPLETED, 3)
            async with aiohttp.ClientSession() as http:
                mine = await scrape(http, ours)
                theirs = await scrape(http, sdk)
            assert sample(mine, "meshfleet_asm_calls_total", operation="create", status="201") == 3
            assert sample(theirs, "meshfleet_meshes", outcome="created") == 3

            # Idle, the worker has nothing to drain: it must exit cleanly well within its grace.
            proc.send_signal(signal.SIGTERM)
            try:
                code = await asyncio.to_thread(proc.wait, STOP_LIMIT_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the worker was still running {STOP_LIMIT_S:g} s after SIGTERM")
            assert code == 0, f"the worker exited with {code} on SIGTERM"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
