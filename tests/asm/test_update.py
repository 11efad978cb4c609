"""``AsmClient.update_mesh`` over loopback HTTP: the wire, the answers and their error classes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from meshfleet.asm.auth import AkSkAuth, StaticTokenAuth
from meshfleet.asm.client import AsmClient
from meshfleet.asm.errors import (
    AsmAuthenticationError,
    AsmBadRequestError,
    AsmConflictError,
    AsmNotFoundError,
    AsmServerError,
    AsmThrottledError,
    AsmValidationError,
)
from meshfleet.asm.models import (
    CreateMeshRequest,
    MeshConfig,
    MeshPhase,
    ProxyConfig,
    UpdateMeshRequest,
)
from meshfleet.asm.signer import AccessKey
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.testing import ManualClock, RunningSimulator, serve

PROJECT = "0123456789abcdef0123456789abcdef"
OTHER_PROJECT = "fedcba9876543210fedcba9876543210"
REGION = "ap-southeast-3"
TOKEN = "tok-update-tests"
AK = "AKUPDATETEST00000001"
SK = "sk-update-test-secret"
CREATE_S = 5.0
UPDATE_S = 3.0
UNKNOWN_UID = "a1efdc3e-0000-4000-8000-94bef433347e"
FIXTURES = Path(__file__).parent / "fixtures"

NEW_CONFIG = MeshConfig(proxy_config=ProxyConfig(include_ip_ranges="10.0.0.0/8,172.16.0.0/12"))
NEW_CONFIG_WIRE = {"proxyConfig": {"includeIPRanges": "10.0.0.0/8,172.16.0.0/12"}}


def update_request(config: MeshConfig = NEW_CONFIG) -> UpdateMeshRequest:
    return UpdateMeshRequest(mesh_config=config)


def mesh_request(name: str = "mesh-a", cluster_id: str = "cluster-a") -> CreateMeshRequest:
    """The published example request, renamed and moved to another cluster."""
    body = json.loads((FIXTURES / "create-mesh-request.json").read_text())
    body["metadata"]["name"] = name
    body["spec"]["extendParams"]["clusters"][0]["clusterID"] = cluster_id
    return CreateMeshRequest.model_validate(body)


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[RunningSimulator]:
    config = SimulatorConfig(
        create_seconds=CREATE_S,
        update_seconds=UPDATE_S,
        tokens=(TOKEN,),
        access_keys=(AccessKey(AK, SK),),
        seed=7,
    )
    async with serve(config, clock=clock) as running:
        yield running


@pytest.fixture
async def asm(sim: RunningSimulator) -> AsyncIterator[AsmClient]:
    async with AsmClient(StaticTokenAuth(TOKEN), endpoint=sim.url) as client:
        yield client


async def running_mesh(asm: AsmClient, clock: ManualClock, name: str = "mesh-a") -> str:
    """Create a mesh and let it reach Running; its uid."""
    created = await asm.create_mesh(PROJECT, REGION, mesh_request(name, f"cluster-{name}"))
    assert created.uid
    clock.advance(CREATE_S)
    assert (await asm.mesh(PROJECT, REGION, created.uid)).phase == MeshPhase.RUNNING
    return created.uid


@asynccontextmanager
async def _stub(
    handler: Callable[[web.Request], Any], seen: list[tuple[web.Request, bytes]]
) -> AsyncIterator[str]:
    """A one-route server on 127.0.0.1 that records each request with its body."""

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append((request, await request.read()))
        response: web.StreamResponse = await handler(request)
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


# --- the wire ------------------------------------------------------------------------------


async def test_put_path_body_and_token() -> None:
    seen: list[tuple[web.Request, bytes]] = []

    async def accept(request: web.Request) -> web.Response:
        return web.Response(status=200)

    async with (
        _stub(accept, seen) as endpoint,
        AsmClient(StaticTokenAuth("tok-stub"), endpoint=endpoint) as client,
    ):
        await client.update_mesh(PROJECT, REGION, UNKNOWN_UID, update_request())
    [(request, body)] = seen
    assert request.method == "PUT"
    assert request.path == f"/v2/projects/{PROJECT}/meshes/{UNKNOWN_UID}"
    assert json.loads(body) == {"action": "update", "meshConfig": NEW_CONFIG_WIRE}
    assert b" " not in body  # compact, like the create body
    assert request.headers["X-Auth-Token"] == "tok-stub"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"


def test_action_is_always_sent_and_only_update_is_accepted() -> None:
    assert update_request(MeshConfig()).to_wire() == {"action": "update", "meshConfig": {}}
    with pytest.raises(ValueError, match="action"):
        UpdateMeshRequest.model_validate({"action": "upgrade", "meshConfig": {}})
    with pytest.raises(ValueError, match="meshConfig"):
        UpdateMeshRequest.model_validate({"action": "update"})
    # Only the configuration can change: no version, clusters or name on this request.
    with pytest.raises(ValueError, match="version"):
        UpdateMeshRequest.model_validate(
            {"action": "update", "meshConfig": {}, "version": "1.18.7-r5"}
        )


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, b'{"anything": "else"}'), (202, b""), (204, b""), (200, b"not json")],
)
async def test_any_2xx_is_accepted_whatever_its_body(status: int, body: bytes) -> None:
    seen: list[tuple[web.Request, bytes]] = []

    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body or None)

    async with (
        _stub(answer, seen) as endpoint,
        AsmClient(StaticTokenAuth("t"), endpoint=endpoint) as client,
    ):
        await client.update_mesh(PROJECT, REGION, UNKNOWN_UID, update_request())
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("project_id", "mesh_id", "field"),
    [
        ("../../v3/auth/tokens#", UNKNOWN_UID, "project_id"),
        (PROJECT, "../../other/meshes", "mesh_id"),
        (PROJECT, "x?y=1", "mesh_id"),
    ],
)
async def test_bad_ids_send_nothing(
    asm: AsmClient, sim: RunningSimulator, project_id: str, mesh_id: str, field: str
) -> None:
    with pytest.raises(AsmValidationError, match=field):
        await asm.update_mesh(project_id, REGION, mesh_id, update_request())
    assert sum(sim.state.stats.requests.values()) == 0


# --- against the simulator -----------------------------------------------------------------


async def test_accepted_update_is_echoed_after_update_seconds(
    asm: AsmClient, sim: RunningSimulator, clock: ManualClock
) -> None:
    uid = await running_mesh(asm, clock)
    before = await asm.mesh(PROJECT, REGION, uid)
    assert before.spec is not None and before.spec.config is not None
    old_proxy = before.spec.config.proxy_config

    await asm.update_mesh(PROJECT, REGION, uid, update_request())
    during = await asm.mesh(PROJECT, REGION, uid)
    assert during.phase == MeshPhase.RUNNING
    assert during.spec is not None and during.spec.config is not None
    assert during.spec.config.proxy_config == old_proxy

    clock.advance(UPDATE_S)
    after = await asm.mesh(PROJECT, REGION, uid)
    assert after.phase == MeshPhase.RUNNING
    assert after.spec is not None and after.spec.config is not None
    assert after.spec.config.proxy_config == NEW_CONFIG_WIRE["proxyConfig"]
    # The configuration is replaced as a whole, and nothing else of the spec moves.
    assert after.spec.config.telemetry_config is None
    assert (after.spec.version, after.cluster_ids) == (before.spec.version, before.cluster_ids)
    assert sim.state.stats.updates(uid) == 1
    assert sim.state.stats.by_operation["update"] == {200: 1}


async def test_aksk_signed_update_is_accepted(sim: RunningSimulator, clock: ManualClock) -> None:
    # The simulator verifies the signature over the /v2 path and the exact body bytes.
    async with AsmClient(AkSkAuth(AccessKey(AK, SK)), endpoint=sim.url) as client:
        uid = await running_mesh(client, clock)
        await client.update_mesh(PROJECT, REGION, uid, update_request())
    assert sim.state.stats.by_operation["update"] == {200: 1}


async def test_a_mesh_that_is_not_running_is_a_conflict(
    asm: AsmClient, sim: RunningSimulator, clock: ManualClock
) -> None:
    creating = await asm.create_mesh(PROJECT, REGION, mesh_request("mesh-new", "cluster-new"))
    assert creating.uid
    with pytest.raises(AsmConflictError) as info:
        await asm.update_mesh(PROJECT, REGION, creating.uid, update_request())
    assert (info.value.status, info.value.error_code) == (409, "ASM.01010004")
    assert "Creating" in info.value.error_msg
    assert info.value.retryable and not info.value.transient

    upgrading = sim.state.seed_mesh(PROJECT, "mesh-old", ["cluster-old"], MeshPhase.UPGRADING)
    with pytest.raises(AsmConflictError, match="Upgrading"):
        await asm.update_mesh(PROJECT, REGION, upgrading.uid, update_request())

    deleting = await running_mesh(asm, clock, "mesh-del")
    await asm.delete_mesh(PROJECT, REGION, deleting)
    with pytest.raises(AsmConflictError, match="Deleting"):
        await asm.update_mesh(PROJECT, REGION, deleting, update_request())

    # None of them took the configuration.
    clock.advance(UPDATE_S)
    for uid in (creating.uid, upgrading.uid):
        shown = await asm.mesh(PROJECT, REGION, uid)
        assert shown.spec is not None
        assert (
            shown.spec.config is None
            or shown.spec.config.proxy_config != (NEW_CONFIG_WIRE["proxyConfig"])
        )


async def test_unknown_mesh_or_another_projects_mesh_is_404(
    asm: AsmClient, sim: RunningSimulator, clock: ManualClock
) -> None:
    with pytest.raises(AsmNotFoundError) as info:
        await asm.update_mesh(PROJECT, REGION, UNKNOWN_UID, update_request())
    assert (info.value.status, info.value.error_code) == (404, "ASM.01010002")
    assert not info.value.retryable

    theirs = sim.state.seed_mesh(OTHER_PROJECT, "mesh-theirs", ["cluster-t"])
    with pytest.raises(AsmNotFoundError):
        await asm.update_mesh(PROJECT, REGION, theirs.uid, update_request())
    assert sim.state.stats.updates(theirs.uid) == 0


async def test_bad_body_is_400(asm: AsmClient, sim: RunningSimulator, clock: ManualClock) -> None:
    uid = await running_mesh(asm, clock)
    # model_construct skips validation: the only way a forbidden body can leave the client.
    bad = UpdateMeshRequest.model_construct(action="replace", mesh_config=NEW_CONFIG)  # type: ignore[arg-type]
    with pytest.raises(AsmBadRequestError) as info:
        await asm.update_mesh(PROJECT, REGION, uid, bad)
    assert info.value.error_code == "ASM.01010001"
    assert "action" in info.value.error_msg
    assert not info.value.retryable
    assert sim.state.stats.updates(uid) == 0


async def test_unauthenticated_update_is_401(sim: RunningSimulator, clock: ManualClock) -> None:
    seeded = sim.state.seed_mesh(PROJECT, "mesh-a", ["cluster-a"])
    async with AsmClient(StaticTokenAuth("not-a-token"), endpoint=sim.url) as client:
        with pytest.raises(AsmAuthenticationError):
            await client.update_mesh(PROJECT, REGION, seeded.uid, update_request())
    assert sim.state.stats.by_operation["update"] == {401: 1}


async def test_throttled_429_is_transient_with_retry_after(
    asm: AsmClient, sim: RunningSimulator, clock: ManualClock
) -> None:
    uid = await running_mesh(asm, clock)
    sim.state.update_faults(fail_429=1.0, retry_after=4)
    with pytest.raises(AsmThrottledError) as info:
        await asm.update_mesh(PROJECT, REGION, uid, update_request())
    assert (info.value.status, info.value.error_code) == (429, "ASM.01429001")
    assert info.value.retryable and info.value.transient
    assert info.value.retry_after == 4.0
    assert sim.state.stats.updates(uid) == 1  # the client never repeats it on its own


async def test_server_error_500_is_transient_and_changes_nothing(
    asm: AsmClient, sim: RunningSimulator, clock: ManualClock
) -> None:
    uid = await running_mesh(asm, clock)
    sim.state.update_faults(rules=["mesh-a=update-500:1"])
    with pytest.raises(AsmServerError) as info:
        await asm.update_mesh(PROJECT, REGION, uid, update_request())
    assert (info.value.status, info.value.error_code) == (500, "ASM.01040001")
    assert info.value.retryable and info.value.transient
    clock.advance(UPDATE_S)
    shown = await asm.mesh(PROJECT, REGION, uid)
    assert shown.spec is not None and shown.spec.config is not None
    assert shown.spec.config.proxy_config != NEW_CONFIG_WIRE["proxyConfig"]

    # The rule hit the first PUT only; asking again gets through.
    await asm.update_mesh(PROJECT, REGION, uid, update_request())
    clock.advance(UPDATE_S)
    shown = await asm.mesh(PROJECT, REGION, uid)
    assert shown.spec is not None and shown.spec.config is not None
    assert shown.spec.config.proxy_config == NEW_CONFIG_WIRE["proxyConfig"]
    assert sim.state.stats.by_operation["update"] == {500: 1, 200: 1}


async def test_stats_endpoint_counts_puts(
    asm: AsmClient, sim: RunningSimulator, clock: ManualClock
) -> None:
    first = await running_mesh(asm, clock, "mesh-a")
    second = await running_mesh(asm, clock, "mesh-b")
    await asm.update_mesh(PROJECT, REGION, first, update_request())
    await asm.update_mesh(PROJECT, REGION, second, update_request())
    async with aiohttp.ClientSession() as http, http.get(f"{sim.url}/_sim/stats") as answer:
        stats = await answer.json()
    assert stats["puts"] == 2
    assert stats["puts_by_uid"] == {first: 1, second: 1}
