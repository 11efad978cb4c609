"""History events per target workflow and per rollout run, counted with ``fetch_history``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from temporalio.client import Client

from meshfleet.contract.payloads import rollout_workflow_id


@dataclass(frozen=True)
class EventCounts:
    """Events per workflow (or run) over a set of them."""

    count: int
    mean: float
    max: int
    max_bytes: int


def _summary(sizes: list[tuple[int, int]]) -> EventCounts:
    if not sizes:
        return EventCounts(0, 0.0, 0, 0)
    events = [e for e, _ in sizes]
    return EventCounts(
        count=len(sizes),
        mean=round(sum(events) / len(events), 2),
        max=max(events),
        max_bytes=max(b for _, b in sizes),
    )


async def _events(client: Client, workflow_id: str, run_id: str | None = None) -> tuple[int, int]:
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    return len(history.events), sum(event.ByteSize() for event in history.events)


async def per_workflow(
    client: Client, workflow_ids: Iterable[str], parallel: int = 20
) -> EventCounts:
    """Events in the latest run of each workflow."""
    gate = asyncio.Semaphore(parallel)

    async def one(workflow_id: str) -> tuple[int, int]:
        async with gate:
            return await _events(client, workflow_id)

    return _summary(list(await asyncio.gather(*(one(w) for w in workflow_ids))))


async def per_rollout_run(client: Client, rollout_id: str) -> EventCounts:
    """Events in each run of a rollout (continue-as-new starts a new run)."""
    workflow_id = rollout_workflow_id(rollout_id)
    runs = [e.run_id async for e in client.list_workflows(f'WorkflowId = "{workflow_id}"')]
    return _summary([await _events(client, workflow_id, run_id) for run_id in runs])
