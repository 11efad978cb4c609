"""meshfleet itself: one ``MeshRolloutWorkflow`` on the stack's worker, timed to its report."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from temporalio.client import Client

from bench import simstats
from bench.fleet import Timing, rollout_spec, targets
from bench.measure import CpuMeter, Run, Stopwatch
from bench.stack import TASK_QUEUE, BenchStack
from meshfleet import rollouts
from meshfleet.models import MeshTarget, RolloutProgress


@dataclass(frozen=True)
class RolloutRun:
    """A finished rollout: the run figures, its id and its fleet (to find the children)."""

    run: Run
    rollout_id: str
    fleet: list[MeshTarget]
    report: RolloutProgress


def deadline_s(count: int, timing: Timing) -> float:
    """Bound on one rollout: generous for 13 meshes/s, so only a stuck run hits it."""
    return 120.0 + count * 0.15 + timing.create_s * 4


async def run_rollout(
    client: Client, stack: BenchStack, count: int, timing: Timing, prefix: str = "mf"
) -> RolloutRun:
    """Roll ``count`` fresh targets out through meshfleet and time it from start to report.

    Raises:
        TimeoutError: the rollout did not finish within ``deadline_s`` (it is terminated).
    """
    rollout_id = f"bench-{prefix}-{count}-{uuid.uuid4().hex[:6]}"
    fleet = targets(prefix, count)
    spec = rollout_spec(rollout_id, fleet, timing)
    await simstats.reset(stack.simulator_url)
    meter = CpuMeter(
        {"worker": stack.worker_pid, "server": stack.temporal_pid, "simulator": stack.simulator_pid}
    )
    watch = Stopwatch()
    await rollouts.start_rollout(client, spec, task_queue=TASK_QUEUE)
    try:
        report = await asyncio.wait_for(
            rollouts.wait_for_report(client, rollout_id), deadline_s(count, timing)
        )
    except TimeoutError:
        await rollouts.rollout_handle(client, rollout_id).terminate("bench deadline")
        raise
    wall = watch.seconds()
    cpu = meter.read()
    run = Run(
        targets=count,
        running=report.created + report.adopted,
        wall_s=wall,
        calls=await simstats.api_calls(stack.simulator_url),
        extra=cpu,
    )
    return RolloutRun(run, rollout_id, fleet, report)
