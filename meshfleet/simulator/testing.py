"""``serve()``: a simulator on a free loopback port for tests and helpers, stopped on exit.

Example::

    async with serve(SimulatorConfig(create_seconds=0.05, tokens=("t",))) as sim:
        async with aiohttp.ClientSession() as http:
            await http.post(sim.mesh_url(project_id), json=body, headers={"X-Auth-Token": "t"})
        assert sim.state.stats.creations(project_id, "mesh-a") == 1

This interface is stable: ``serve(config, host, port, *, clock)`` and ``RunningSimulator`` with
``url``, ``host``, ``port``, ``state``, ``config``, ``clock``, ``mesh_url()``,
``update_url()``, ``upgrade_url()``, ``job_url()`` and ``upgrades()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from meshfleet.simulator.app import build_app
from meshfleet.simulator.clock import Clock, ManualClock, SystemClock
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.state import SimulatorState

__all__ = ["ManualClock", "RunningSimulator", "serve"]


@dataclass(frozen=True)
class RunningSimulator:
    """A simulator serving HTTP; ``state`` is the live state for assertions and seeding."""

    url: str
    """Base URL, e.g. ``http://127.0.0.1:43123`` (no trailing slash)."""
    host: str
    port: int
    state: SimulatorState
    config: SimulatorConfig
    clock: Clock

    def mesh_url(self, project_id: str, mesh_id: str | None = None) -> str:
        """``{url}/v1/{project_id}/meshes`` or ``…/meshes/{mesh_id}`` (no validation: tests may
        want bad ids)."""
        base = f"{self.url}/v1/{project_id}/meshes"
        return f"{base}/{mesh_id}" if mesh_id is not None else base

    def update_url(self, project_id: str, mesh_id: str) -> str:
        """``{url}/v2/projects/{project_id}/meshes/{mesh_id}``, the update's own path (no
        validation)."""
        return f"{self.url}/v2/projects/{project_id}/meshes/{mesh_id}"

    def upgrade_url(self, project_id: str, task_id: str | None = None) -> str:
        """``{url}/v1/{project_id}/mesh-upgrade`` or ``…/mesh-upgrade/{task_id}`` (no
        validation)."""
        base = f"{self.url}/v1/{project_id}/mesh-upgrade"
        return f"{base}/{task_id}" if task_id is not None else base

    def job_url(self, project_id: str, job_id: str) -> str:
        """``{url}/v1/{project_id}/mesh-job/{job_id}`` (no validation)."""
        return f"{self.url}/v1/{project_id}/mesh-job/{job_id}"

    def upgrades(self, mesh_uid: str | None = None) -> list[dict[str, Any]]:
        """Every upgrade task now, as ``GET /_sim/upgrades`` lists them (only the mesh
        ``mesh_uid``'s when given): what a test reads to find a task whose 201 it never got."""
        items = self.state.upgrade_summaries()
        return [t for t in items if mesh_uid is None or t["mesh_uid"] == mesh_uid]


@asynccontextmanager
async def serve(
    config: SimulatorConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    clock: Clock | None = None,
) -> AsyncIterator[RunningSimulator]:
    """Run a simulator on the current event loop until the block exits.

    Args:
        config: Its configuration (``SimulatorConfig()`` by default: auth on, no credentials).
        host: Address to bind; loopback by default.
        port: Port to bind; 0 picks a free one (read it from ``.port`` or ``.url``).
        clock: Time source; pass a ``ManualClock`` to move phases and token expiry without
            sleeping.
    """
    config = config or SimulatorConfig()
    clock = clock or SystemClock()
    state = SimulatorState(config, clock)
    runner = web.AppRunner(build_app(state), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield RunningSimulator(
            url=f"http://{shown}:{bound_port}",
            host=bound_host,
            port=bound_port,
            state=state,
            config=config,
            clock=clock,
        )
    finally:
        await runner.cleanup()
