"""How request handlers reach the ``SimulatorState`` of the aiohttp application serving them."""

from __future__ import annotations

from aiohttp import web

from meshfleet.simulator.state import SimulatorState

STATE: web.AppKey[SimulatorState] = web.AppKey("simulator_state", SimulatorState)


def state_of(request: web.Request) -> SimulatorState:
    """The state of the application that received ``request``."""
    return request.app[STATE]
