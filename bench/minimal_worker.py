"""``python -m bench.minimal_worker``: the minimal baseline's worker, sized like meshfleet's."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aiohttp
from temporalio.client import Client
from temporalio.worker import Worker

from bench.minimal_activities import MinimalActivities
from bench.minimal_workflow import TASK_QUEUE, MinimalMeshWorkflow
from meshfleet.process_exit import flush_and_exit
from meshfleet.settings import Settings


async def serve() -> None:
    """Poll ``bench-minimal`` until SIGTERM, with meshfleet's worker concurrency settings."""
    settings = Settings.model_validate(dict(os.environ))
    client = await Client.connect(os.environ["TEMPORAL_ADDRESS"])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with aiohttp.ClientSession() as http:
        acts = MinimalActivities(http, os.environ["ASM_ENDPOINT"], os.environ["ASM_AUTH_TOKEN"])
        worker = Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[MinimalMeshWorkflow],
            activities=[acts.post_mesh, acts.poll_mesh],
            max_concurrent_activities=settings.max_concurrent_activities,
            max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        )
        async with worker:
            print("minimal worker polling", flush=True)
            await stop.wait()


if __name__ == "__main__":
    code = 0
    try:
        asyncio.run(serve())
    except Exception as exc:
        print(f"minimal worker: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 3
    flush_and_exit(code)
