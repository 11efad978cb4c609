"""The two baselines on the same stack: plain asyncio + aiohttp, and a minimal Temporal workflow."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from bench import history, procs, simstats
from bench.contender_meshfleet import deadline_s
from bench.fleet import Timing, body, targets
from bench.measure import CpuMeter, Run, Stopwatch
from bench.minimal_workflow import TASK_QUEUE, WORKFLOW, MinimalInput
from bench.stack import BenchStack


async def run_asyncio(stack: BenchStack, count: int, timing: Timing) -> Run:
    """The asyncio script as its own process (so its CPU is its own), timed by itself.

    Raises:
        RuntimeError: the script failed or printed no result.
        TimeoutError: it ran longer than meshfleet's deadline for the same fleet.
    """
    await simstats.reset(stack.simulator_url)
    log = stack.state_dir / "baseline-asyncio.log"
    argv = [
        sys.executable,
        "-m",
        "bench.baseline_asyncio",
        f"--endpoint={stack.simulator_url}",
        f"--targets={count}",
        f"--window={timing.window}",
        f"--first-poll-s={timing.first_poll_s}",
        f"--poll-s={timing.poll_s}",
    ]
    process = procs.spawn(argv, stack.env, log)
    meter = CpuMeter({"script": process.pid, "simulator": stack.simulator_pid})
    cpu = meter.read()
    try:
        async with asyncio.timeout(deadline_s(count, timing)):
            while process.poll() is None:
                cpu = meter.read()  # the last reading before the process is reaped
                await asyncio.sleep(0.2)
    finally:
        procs.stop(process)
    lines = log.read_text().strip().splitlines()
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"asyncio baseline failed ({process.returncode}); see {log}")
    result = json.loads(lines[-1])
    calls = await simstats.api_calls(stack.simulator_url)
    return Run(count, int(result["running"]), float(result["wall_s"]), calls, cpu)


async def _wait_for_poller(client: Client, checks: int = 300) -> None:
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=TASK_QUEUE),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    # A poller on the task queue proves the worker is connected, not merely started.
    for _ in range(checks):
        if (await client.workflow_service.describe_task_queue(request)).pollers:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"no worker polled {TASK_QUEUE} within {checks * 0.2:g} s")


async def run_minimal_temporal(stack: BenchStack, count: int, timing: Timing) -> Run:
    """One minimal workflow per target, at most ``window`` at a time, on the same dev server.

    Raises:
        TimeoutError: it ran longer than meshfleet's deadline for the same fleet.
    """
    await simstats.reset(stack.simulator_url)
    env = stack.env
    client = await Client.connect(env["TEMPORAL_ADDRESS"])
    worker = procs.spawn(
        [sys.executable, "-m", "bench.minimal_worker"], env, stack.state_dir / "minimal.log"
    )
    tag = uuid.uuid4().hex[:6]
    try:
        await _wait_for_poller(client)
        fleet = targets("mn", count)
        gate = asyncio.Semaphore(timing.window)

        async def one(index: int) -> str:
            target = fleet[index]
            inp = MinimalInput(target.project_id, body(target), timing.first_poll_s, timing.poll_s)
            async with gate:
                phase: str = await client.execute_workflow(
                    WORKFLOW, inp, id=f"bench-min-{tag}-{index}", task_queue=TASK_QUEUE
                )
                return phase

        meter = CpuMeter(
            {"worker": worker.pid, "server": stack.temporal_pid, "simulator": stack.simulator_pid}
        )
        watch = Stopwatch()
        async with asyncio.timeout(deadline_s(count, timing)):
            phases = await asyncio.gather(*(one(i) for i in range(count)))
        wall = watch.seconds()
        extra = meter.read() | {"worker_peak_rss_mb": procs.peak_rss_mb(worker.pid)}
    finally:
        procs.stop(worker)
    events = await history.per_workflow(client, [f"bench-min-{tag}-0"])
    extra["history_events_per_workflow"] = events.max
    calls = await simstats.api_calls(stack.simulator_url)
    return Run(count, sum(p == "Running" for p in phases), wall, calls, extra)
