"""Scenario 4: the ASM API misbehaves in every way at once; each mesh still ends Running, once.

Faults: 30 % of creates answer 500 before creating, 10 % create and then answer 500, 429 lock
storms with ``Retry-After`` (every create refused for a while), 2 s latency spikes on every call,
and the API endpoint itself restarted mid-rollout (meshes kept, connections refused meanwhile).
Only the targets the simulator was told to fail (``doomed-*`` end ``CreateFailed``) may fail.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from temporalio.client import Client

from meshfleet import rollouts
from meshfleet.models import RetryPolicySpec
from meshfleet.simulator.config import FaultConfig, SimulatorConfig
from tests.helpers.audit import assert_created_once, assert_reported_once, audit_rollout
from tests.helpers.fleet import SIM_TOKEN, running_worker, spec, target
from tests.helpers.progress import wait_for_creations
from tests.helpers.simulator_site import SimulatorSite, simulator_site


@dataclass(frozen=True)
class Storm:
    """One disturbance, started once ``at`` meshes exist, lasting ``seconds``."""

    at: int
    kind: str  # "429", "latency" or "restart"
    seconds: float


async def _weather(site: SimulatorSite, storms: list[Storm]) -> None:
    state = site.state
    for storm in storms:
        await wait_for_creations(state, storm.at, 300)
        if storm.kind == "restart":
            await site.restart(down_s=storm.seconds)
            continue
        change = {"fail_429": 1.0, "retry_after": 0.5} if storm.kind == "429" else {"latency": 2.0}
        calm = {"fail_429": 0.0, "retry_after": None} if storm.kind == "429" else {"latency": 0.0}
        state.update_faults(**change)
        await asyncio.sleep(storm.seconds)  # how long the storm lasts
        state.update_faults(**calm)


async def _rollout_through_faults(
    client: Client, task_queue: str, *, size: int, doomed: int, storms: list[Storm]
) -> None:
    rollout_id = f"faults-{size}"
    fleet = [target(70_000 + i, f"faulty-{i:05d}") for i in range(size - doomed)]
    condemned = [target(79_000 + i, f"doomed-{i:03d}") for i in range(doomed)]
    # Interleave the doomed among the rest, so they meet the same weather.
    everyone = fleet[:]
    for n, t in enumerate(condemned):
        everyone.insert((n + 1) * len(everyone) // (doomed + 1), t)
    faults = FaultConfig(fail_500_before=0.3, fail_500_after=0.1, rules=["doomed-*=create-failed"])
    config = SimulatorConfig(create_seconds=0.5, tokens=(SIM_TOKEN,), faults=faults, seed=7)
    async with simulator_site(config) as site:
        strategy = {
            "window": 20,
            "timeout_s": 300,
            # Patient enough for storms and an outage: up to 60 tries, at most 1 s apart.
            "create_retry": RetryPolicySpec(initial_s=0.1, maximum_s=1.0, max_attempts=60),
        }
        async with running_worker(client, task_queue, site.url):
            weather = asyncio.create_task(_weather(site, storms))
            try:
                await rollouts.start_rollout(
                    client, spec(rollout_id, everyone, **strategy), task_queue=task_queue
                )
                report = await asyncio.wait_for(rollouts.wait_for_report(client, rollout_id), 600)
                await asyncio.wait_for(weather, 10)  # every storm did blow
            finally:
                weather.cancel()

        stats = site.state.stats
        print(f"faults injected: {dict(stats.faults)}; restarts {site.restarts}")
        assert stats.faults["500-before"] > 0 and stats.faults["500-after"] > 0
        assert stats.faults["429"] > 0 and stats.faults["latency"] > 0
        assert site.restarts == sum(s.kind == "restart" for s in storms)

        audit = await audit_rollout(client, rollout_id, size)
        assert_reported_once(report, audit, everyone)
        assert (report.created, report.adopted, report.failed) == (size - doomed, 0, doomed)
        assert {f.mesh_name for f in report.failures} == {t.mesh_name for t in condemned}
        assert {f.error_code for f in report.failures} == {"CreateFailed"}
        assert_created_once(site.state, fleet)
        assert_created_once(site.state, condemned, phase="CreateFailed")


async def test_every_fault_at_once_on_80_targets(client: Client, task_queue: str) -> None:
    # The CI scale: 80 targets, one storm of each kind, each a few seconds long.
    await _rollout_through_faults(
        client,
        task_queue,
        size=80,
        doomed=4,
        storms=[Storm(10, "429", 2), Storm(25, "latency", 3), Storm(40, "restart", 1)],
    )


@pytest.mark.chaos
async def test_every_fault_at_once_on_600_targets_with_repeated_storms(
    client: Client, task_queue: str
) -> None:
    await _rollout_through_faults(
        client,
        task_queue,
        size=600,
        doomed=12,
        storms=[
            Storm(50, "429", 5),
            Storm(100, "latency", 8),
            Storm(150, "restart", 5),
            Storm(250, "429", 10),
            Storm(300, "latency", 10),
            Storm(350, "restart", 10),
            Storm(450, "latency", 5),
            Storm(500, "429", 5),
        ],
    )
