"""Waiting on what the simulator saw: the moment to strike in the middle of a rollout."""

from __future__ import annotations

from meshfleet.simulator.state import SimulatorState
from tests.helpers.eventually import eventually


def creations(state: SimulatorState) -> int:
    """Meshes created by client POSTs so far, over every project and name."""
    return sum(s.creations for s in state.stats.names.values())


async def wait_for_creations(state: SimulatorState, count: int, limit_s: float) -> None:
    """Return once the simulator has created ``count`` meshes."""
    await eventually(lambda: creations(state) >= count, limit_s, f"{count} meshes created")
