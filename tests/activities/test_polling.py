"""Both polls (``wait_for_mesh``, ``wait_for_mesh_gone``) read the mesh the same way: they outlive
what the error's class calls transient, waiting the server's ``Retry-After`` after a throttled
show, heartbeating, never past their deadline; they end at any other error as its class says; and
an attempt resumes from the last heartbeat.

The simulator's faults (``fail_429``, ``429`` rules) hit creates and deletes, not shows; so the
simulator's own application is served here with one more middleware that answers the first shows
with chosen statuses: a 429 ``ASM.01429001`` with the ``Retry-After`` of its ``retry_after`` fault
setting, as its throttled creates do, or another status with the simulator's code for it. That
middleware sits inside the simulator's, so the simulator counts each answer and gives it a
request id; it also logs when each show arrived, which is what is measured.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
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
from meshfleet.contract.deletion import WaitGoneInput, WaitGoneResult
from meshfleet.contract.payloads import WaitForMeshInput, WaitForMeshResult
from meshfleet.models import MeshTarget
from meshfleet.simulator.app import build_app
from meshfleet.simulator.config import FaultConfig, SimulatorConfig
from meshfleet.simulator.responses import (
    ALREADY_EXISTS,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    RESOURCE_LOCKED,
    error,
)
from meshfleet.simulator.state import SimulatorState
from meshfleet.simulator.stats import SHOW
from tests.helpers.fleet import SIM_TOKEN, target

RETRY_AFTER_S = 1.0
POLL_INTERVAL_S = 0.05


# What the first shows are answered, by status.
_ANSWERS = {
    400: (INVALID_REQUEST, "invalid request"),
    409: (ALREADY_EXISTS, "the mesh is being changed by another request"),
    429: (RESOURCE_LOCKED, "the resource is locked by another request"),
    500: (INTERNAL_ERROR, "internal error"),
    503: (INTERNAL_ERROR, "service unavailable"),
}


@dataclass
class ThrottledShows:
    """The simulator at ``url``; its first shows answer ``first``, one status each."""

    url: str
    state: SimulatorState
    first: tuple[int, ...]
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
async def throttled_shows(
    config: SimulatorConfig, first: tuple[int, ...] = (429,)
) -> AsyncIterator[ThrottledShows]:
    """The simulator's application on a free loopback port, its first shows answered ``first``."""
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
        if len(sim.shows) < len(sim.first):
            status = sim.first[len(sim.shows)]
            seconds = state.faults.retry_after
            headers = (
                {"Retry-After": f"{seconds:g}"} if status == 429 and seconds is not None else None
            )
            code, message = _ANSWERS[status]
            response: web.StreamResponse = error(status, code, message, headers)
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
        sim = ThrottledShows(f"http://127.0.0.1:{port}", state, first)
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


async def _deleted(
    api: AsmClient, t: MeshTarget, *, deadline_s: float, first_poll_s: float = 0
) -> WaitGoneInput:
    """POST the target's mesh and DELETE it; the input of a wait for it to be gone."""
    mesh = await api.create_mesh(t.project_id, t.region, t.to_request())
    assert mesh.uid is not None
    await api.delete_mesh(t.project_id, t.region, mesh.uid)
    return WaitGoneInput(
        rollout_id="r1",
        project_id=t.project_id,
        region=t.region,
        mesh_name=t.mesh_name,
        uid=mesh.uid,
        first_poll_s=first_poll_s,
        poll_interval_s=POLL_INTERVAL_S,
        deadline=_deadline(deadline_s),
    )


WAITS = ("wait_for_mesh", "wait_for_mesh_gone")
LAST_ANSWER = {"wait_for_mesh": 200, "wait_for_mesh_gone": 404}


async def _wait(
    which: str,
    api: AsmClient,
    t: MeshTarget,
    env: ActivityEnvironment,
    *,
    deadline_s: float = 30,
    first_poll_s: float = 0,
) -> WaitForMeshResult | WaitGoneResult:
    """Run one of the two waits on a mesh of ``t`` that gets there at once."""
    if which == "wait_for_mesh":
        inp = await _created(api, t, deadline_s=deadline_s)
        inp = inp.model_copy(update={"first_poll_s": first_poll_s})
        waited: WaitForMeshResult = await env.run(MeshActivities(api).wait_for_mesh, inp)
        return waited
    gone_inp = await _deleted(api, t, deadline_s=deadline_s, first_poll_s=first_poll_s)
    gone: WaitGoneResult = await env.run(DeletionActivities(api).wait_for_mesh_gone, gone_inp)
    return gone


def _instant() -> SimulatorConfig:
    # No Retry-After: a poll that outlives an answer reads again after its interval.
    return SimulatorConfig(create_seconds=0, delete_seconds=0, tokens=(SIM_TOKEN,))


async def test_wait_for_mesh_waits_retry_after_before_the_next_show() -> None:
    t = target(1)
    async with (
        throttled_shows(_config(create_seconds=0.3)) as sim,
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
        throttled_shows(_config(create_seconds=0, delete_seconds=0.3)) as sim,
        AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=sim.url) as api,
    ):
        inp = await _deleted(api, t, deadline_s=30)
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
        throttled_shows(config) as sim,
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


@pytest.mark.parametrize("which", WAITS)
async def test_a_poll_outlives_every_answer_its_class_calls_transient(which: str) -> None:
    first = (500, 429, 503)
    async with (
        throttled_shows(_instant(), first) as sim,
        AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=sim.url) as api,
    ):
        waited = await _wait(which, api, target(4), ActivityEnvironment())

    assert waited.polls == len(first) + 1
    assert [status for _, status in sim.shows] == [*first, LAST_ANSWER[which]]


@pytest.mark.parametrize("which", WAITS)
@pytest.mark.parametrize(
    ("status", "type_name", "non_retryable"),
    [
        (400, errors.BAD_REQUEST, True),
        # Retried by Temporal, yet not a passing state of ASM a poll reads through.
        (409, errors.TRANSIENT, False),
    ],
)
async def test_a_poll_ends_at_an_answer_that_is_not_transient(
    which: str, status: int, type_name: str, non_retryable: bool
) -> None:
    async with (
        throttled_shows(_instant(), (status,)) as sim,
        AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=sim.url) as api,
    ):
        with pytest.raises(ApplicationError) as ended:
            await _wait(which, api, target(5), ActivityEnvironment())

    assert (ended.value.type, ended.value.non_retryable) == (type_name, non_retryable)
    assert ended.value.message.startswith(f"show mesh: HTTP {status} ")
    assert [s for _, s in sim.shows] == [status]


@pytest.mark.parametrize("which", WAITS)
async def test_a_resumed_attempt_reads_at_once_and_counts_on(which: str) -> None:
    # What the attempt before heartbeated: three reads, the mesh in this phase.
    phase = "Creating" if which == "wait_for_mesh" else "Deleting"
    env = ActivityEnvironment()
    env.info = replace(env.info, attempt=2, heartbeat_details=[{"phase": phase, "polls": 3}])
    beats: list[tuple[object, ...]] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    async with (
        throttled_shows(_instant(), ()) as sim,
        AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=sim.url) as api,
    ):
        started = time.monotonic()
        # A fresh attempt would wait a minute before its first read.
        waited = await _wait(which, api, target(6), env, deadline_s=20, first_poll_s=60)
        took = time.monotonic() - started

    assert waited.polls == 4
    assert [s for _, s in sim.shows] == [LAST_ANSWER[which]]
    assert took < 10, f"a resumed attempt waited {took:.1f} s before reading"
    last_phase = "Running" if which == "wait_for_mesh" else phase
    assert beats[-1] == ({"phase": last_phase, "polls": 4},)
