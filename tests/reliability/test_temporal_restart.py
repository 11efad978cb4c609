"""Scenario 3: Temporal stops mid-rollout and comes back on the same SQLite file and port.

The worker is the production process and is left alone: it has to find the server again by itself.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from temporalio.client import Client

from meshfleet import rollouts
from meshfleet.simulator.config import SimulatorConfig
from tests.helpers.audit import (
    assert_all_created_once,
    audit_rollout,
)
from tests.helpers.fleet import SIM_TOKEN, spec, target
from tests.helpers.processes import DevServer, dev_server, worker_env, worker_process
from tests.helpers.progress import creations, wait_for_creations
from tests.helpers.simulator_site import simulator_site


async def _restart_mid_rollout(
    tmp_path: Path, *, size: int, stops: list[int], down_s: float, limit_s: float
) -> list[float]:
    """Roll out ``size`` targets; stop Temporal at each creation count in ``stops``.

    Returns the seconds each stop took (SIGTERM to exit).
    """
    rollout_id = f"restart-{size}"
    fleet = [target(30_000 + i, f"restart-{i:05d}") for i in range(size)]
    stop_times: list[float] = []
    with dev_server(tmp_path / "temporal.db", tmp_path / "temporal.log") as server:
        client = await server.start()
        async with simulator_site(SimulatorConfig(create_seconds=0.5, tokens=(SIM_TOKEN,))) as sim:
            environ = worker_env(server.address, "restart", sim.url)
            async with worker_process(client, environ, tmp_path / "worker.log") as worker:
                await rollouts.start_rollout(
                    client,
                    spec(rollout_id, fleet, window=20, timeout_s=300),
                    task_queue="restart",
                )
                for at in stops:
                    await wait_for_creations(sim.state, at, limit_s)
                    client = await _bounce(server, down_s, stop_times)
                    assert at <= creations(sim.state) < size
                report = await asyncio.wait_for(
                    rollouts.wait_for_report(client, rollout_id), limit_s
                )
                # The same worker process finished the rollout: it reconnected on its own.
                assert worker.proc.poll() is None, worker.log()[-2000:]
            audit = await audit_rollout(client, rollout_id, size)
            print(f"{size} targets in {report.seconds:.1f} s; slowest {audit.slowest_s:.1f} s")
            assert_all_created_once(report, audit, sim.state, fleet)
    return stop_times


async def _bounce(server: DevServer, down_s: float, stop_times: list[float]) -> Client:
    code, took = await server.stop()
    assert code == 0, f"temporal exited with {code}"
    stop_times.append(took)
    await asyncio.sleep(down_s)  # the outage itself: nothing to wait for but time
    started = time.monotonic()
    client = await server.start()
    print(f"temporal stopped in {took:.1f} s, back in {time.monotonic() - started:.1f} s")
    return client


async def test_rollout_survives_a_temporal_restart(tmp_path: Path) -> None:
    await _restart_mid_rollout(tmp_path, size=60, stops=[20], down_s=3, limit_s=120)


@pytest.mark.chaos
async def test_rollout_survives_three_temporal_restarts_with_long_outages(tmp_path: Path) -> None:
    await _restart_mid_rollout(tmp_path, size=300, stops=[50, 150, 250], down_s=20, limit_s=600)
