"""Both polls (``wait_for_mesh``, ``wait_for_mesh_gone``) wait the server's ``Retry-After`` after
a throttled show, heartbeating, and never past their deadline.

The simulator's 429 faults (``fail_429``, ``429`` rules) hit creates and deletes, not shows; so
the simulator's own application is served here with one more middleware that answers the first
show 429 ``ASM.01429001`` with the ``Retry-After`` of its ``retry_after`` fault setting, as its
throttled creates do. That middleware sits inside the simulator's, so the simulator counts the
429 and gives it a request id; it also logs when each show arrived, which is what is measured.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.deletion import DeletionActivities
from activities.mesh import MeshActivities
from meshfleet.asm.auth import StaticTokenAuth
from meshfleet.asm.client import AsmClient
from meshfleet.contract import failures as errors
from meshfleet.contract.deletion import WaitGoneInput
from meshfleet.contract.payloads import WaitForMeshInput
from meshfleet.models import MeshTarget
from meshfleet.simulator.app import build_app
from meshfleet.simulator.config import FaultConfig, SimulatorConfig
from meshfleet.simulator.responses import RESOURCE_LOCKED, error
from meshfleet.simulator.state import SimulatorState
from meshfleet.simulator.stats import SHOW
from tests.helpers.fleet import SIM_TOKEN, target

RETRY_AFTER_S = 1.0
POLL_INTERVAL_S = 0.05


@dataclass
class ThrottledShows:
    """The simulator at ``url``; its first ``throttle`` shows answer 429."""

    url: str
    state: SimulatorState
    throttle: int
    shows: list[tuple[float, int]] = field(default_factory=list)
    """(monotonic time the show arrived, status answered), in order."""

    def gaps_after_429(self) -> list[float]:
        """Seconds from each 429 to the next show."""
        return [
            later[0] - earlier[0]
            for earlier, later in zip(self.shows, self.shows[1:], strict=False)
            if earlier[1] == 429
        ]


@asynccontextmanager
async def throttled_shows(config: SimulatorConfig, throttle: int) -> AsyncIterator[ThrottledShows]:
    """The simulator's application on a free loopback port, its first shows throttled."""
    state = SimulatorState(config)
    app = build_app(state)
    sim: ThrottledShows | None = None

    @web.middleware
    async def throttle_shows(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.match_info.route.name != SHOW:
            return await handler(request)
        assert sim is not None
        arrived = time.monotonic()
        if len(sim.shows) < sim.throttle:
            seconds = state.faults.retry_after
            headers = {"Retry-After": f"{seconds:g}"} if seconds is not None else None
            response: web.StreamResponse = error(
                429, RESOURCE_LOCKED, "the resource is locked by another request", headers
            )
        else:
            response = await handler(request)
        sim.shows.append((arrived, response.status))
        return response

    app.middlewares.append(throttle_shows)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        sim = ThrottledShows(f"http://127.0.0.1:{port}", state, throttle)
        yield sim
    finally:
        await runner.cleanup()


def _config(*, create_seconds: float, delete_seconds: float = 2.0) -> SimulatorConfig:
    return SimulatorConfig(
        create_seconds=create_seconds,
        delete_seconds=delete_seconds,
        tokens=(SIM_TOKEN,),
        faults=FaultConfig(retry_after=RETRY_AFTER_S),
    )


def _deadline(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def _created(api: AsmClient, t: MeshTarget, *, deadline_s: float) -> WaitForMeshInput:
    """POST the target's mesh; the input of a wait for it that polls at once."""
    mesh = await api.create_mesh(t.project_id, t.region, t.to_request())
    assert mesh.uid is not None
    return WaitForMeshInput(
        project_id=t.project_id,
        region=t.region,
        mesh_name=t.mesh_name,
        uid=mesh.uid,
        cluster_id=t.cluster_id,
        first_poll_s=0,
        poll_interval_s=POLL_INTERVAL_S,
        deadline=_deadline(deadline_s),
    )


async def test_wait_for_mesh_waits_retry_after_before_the_next_show() -> None:
    t = target(1)
    async with (
        throttled_shows(_config(create_seconds=0.3), throttle=1) as sim,
        AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=sim.url) as api,
    ):
        inp = await _created(api, t, deadline_s=30)
        beats: list[object] = []
        env = ActivityEnvironment()
        env.on_heartbeat = lambda *details: beats.append(details)
        waited = await env.run(MeshActivities(api).wait_for_mesh, inp)

    assert (waited.phase, waited.polls) == ("Running", 2)
    assert [status for _, status in sim.shows] == [429, 200]
    (gap,) = sim.gaps_after_429()
    assert gap >= RETRY_AFTER_S, f"polled again {gap:.3f} s after a Retry-After of 1 s"
    assert sim.state.stats.by_operation[SHOW] == {429: 1, 200: 1}
    assert beats  # the wait heartbeats


async def test_wait_for_mesh_gone_waits_retry_after_before_the_next_show() -> None:
    t = target(2)
    async with (
        throttled_shows(_config(create_seconds=0, delete_seconds=0.3), throttle=1) as sim,
        AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=sim.url) as api,
    ):
        mesh = await api.create_mesh(t.project_id, t.region, t.to_request())
        assert mesh.uid is not None
        await api.delete_mesh(t.project_id, t.region, mesh.uid)
        inp = WaitGoneInput(
            rollout_id="r1",
            project_id=t.project_id,
            region=t.region,
            mesh_name=t.mesh_name,
            uid=mesh.uid,
            first_poll_s=0,
            poll_interval_s=POLL_INTERVAL_S,
            deadline=_deadline(30),
        )
        gone = await ActivityEnvironment().run(DeletionActivities(api).wait_for_mesh_gone, inp)

    assert gone.polls == 2
    assert [status for _, status in sim.shows] == [429, 404]
    (gap,) = sim.gaps_after_429()
    assert gap >= RETRY_AFTER_S, f"polled again {gap:.3f} s after a Retry-After of 1 s"


async def test_a_retry_after_past_the_deadline_does_not_outlast_it() -> None:
    t = target(3)
    config = SimulatorConfig(
        create_seconds=60, tokens=(SIM_TOKEN,), faults=FaultConfig(retry_after=30)
    )
    async with (
        throttled_shows(config, throttle=1) as sim,
        AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=sim.url) as api,
    ):
        inp = await _created(api, t, deadline_s=0.5)
        with pytest.raises(ApplicationError) as raised:
            await ActivityEnvironment().run(MeshActivities(api).wait_for_mesh, inp)

    assert (raised.value.type, raised.value.non_retryable) == (errors.MESH_TIMEOUT, True)
    # One last look at the deadline, not 30 s later.
    assert [status for _, status in sim.shows] == [429, 200]
    (gap,) = sim.gaps_after_429()
    assert gap < 5
