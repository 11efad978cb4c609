"""Waiting on what the simulator saw: the moment to strike in the middle of a rollout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from meshfleet.simulator.state import SimulatorState


def creations(state: SimulatorState) -> int:
    """Meshes created by client POSTs so far, over every project and name."""
    return sum(s.creations for s in state.stats.names.values())


async def wait_until(ok: Callable[[], bool], limit_s: float, what: str) -> None:
    """Return as soon as ``ok()`` holds; fail after ``limit_s`` naming ``what``."""
    try:
        async with asyncio.timeout(limit_s):
            while not ok():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not within {limit_s:g} s: {what}") from None


async def wait_for_creations(state: SimulatorState, count: int, limit_s: float) -> None:
    """Return once the simulator has created ``count`` meshes."""
    await wait_until(lambda: creations(state) >= count, limit_s, f"{count} meshes created")
