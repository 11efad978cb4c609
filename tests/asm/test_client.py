"""``AsmClient`` over loopback HTTP: every status path against the simulator, and its guards."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from meshfleet.asm.auth import AkSkAuth, StaticTokenAuth
from meshfleet.asm.client import AsmClient
from meshfleet.asm.endpoints import endpoint_for, iam_endpoint_for
from meshfleet.asm.errors import (
    AsmAuthenticationError,
    AsmBadRequestError,
    AsmConflictError,
    AsmConnectionError,
    AsmForbiddenError,
    AsmNotFoundError,
    AsmServerError,
    AsmStatusError,
    AsmThrottledError,
    AsmValidationError,
    error_from_response,
)
from meshfleet.asm.models import CreateMeshRequest, MeshMetadata, MeshPhase
from meshfleet.asm.rules import check_mesh_id, check_project_id
from meshfleet.asm.signer import AccessKey
from meshfleet.asm.transport import Request
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.testing import ManualClock, RunningSimulator, serve
from tests.helpers.ports import free_port

PROJECT = "0123456789abcdef0123456789abcdef"
REGION = "ap-southeast-3"
# The create request example of the published API page (tests/asm/fixtures/README.md).
FIXTURES = Path(__file__).parent / "fixtures"

# --- endpoints -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "asm", "iam"),
    [
        (
            "ap-southeast-3",
            "https://asm.ap-southeast-3.myhuaweicloud.com",
            "https://iam.ap-southeast-3.myhuaweicloud.com",
        ),
        (
            "cn-north-4",
            "https://asm.cn-north-4.myhuaweicloud.com",
            "https://iam.cn-north-4.myhuaweicloud.com",
        ),
        (
            "eu-west-101",
            "https://asm.eu-west-101.myhuaweicloud.eu",
            "https://iam.eu-west-101.myhuaweicloud.eu",
        ),
        (
            "eu-west-0",
            "https://asm.eu-west-0.myhuaweicloud.com",
            "https://iam.eu-west-0.myhuaweicloud.com",
        ),
    ],
)
def test_default_endpoints(region: str, asm: str, iam: str) -> None:
    assert endpoint_for(region) == asm
    assert iam_endpoint_for(region) == iam


def test_override_replaces_the_default_and_fills_region() -> None:
    assert endpoint_for(REGION, "http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert endpoint_for(REGION, "") == "https://asm.ap-southeast-3.myhuaweicloud.com"
    assert (
        endpoint_for(REGION, "https://asm.{region}.internal/base")
        == "https://asm.ap-southeast-3.internal/base"
    )
    assert iam_endpoint_for("eu-west-101", "http://iam-{region}.test") == (
        "http://iam-eu-west-101.test"
    )


@pytest.mark.parametrize(
    "region",
    [
        "",
        "ap",
        "AP-SOUTHEAST-3",
        "ap-southeast-3.evil.com",
        "ap-southeast-3/x",
        "ap-southeast-3:80",
        "ap-southeast-3\n",
        "ap-southeast-3#",
        "ap_southeast_3",
        "\u0430p-southeast-3",  # Cyrillic small a
        "a" * 30 + "-" + "b" * 30,
    ],
)
def test_bad_region_never_enters_a_host(region: str) -> None:
    for build in (endpoint_for, iam_endpoint_for):
        with pytest.raises(AsmValidationError, match="region"):
            build(region)
        with pytest.raises(AsmValidationError, match="region"):
            build(region, "http://127.0.0.1:1/{region}")


@pytest.mark.parametrize(
    "override", ["127.0.0.1:8080", "ftp://host", "http://", "http://h/?q=1", "http://h/#f"]
)
def test_bad_override_is_refused(override: str) -> None:
    with pytest.raises(AsmValidationError, match="ASM_ENDPOINT"):
        endpoint_for(REGION, override)
    with pytest.raises(AsmValidationError, match="ASM_ENDPOINT"):
        AsmClient(StaticTokenAuth("t"), endpoint=override)


# --- id validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "project_id",
    [
        "",
        "0123456789ABCDEF0123456789ABCDEF",
        "0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0",
        "0123456789abcdef0123456789abcdef\n",
        "0123456789abcdef/123456789abcdef",
        "..23456789abcdef0123456789abcdef",
        "%2e%2e456789abcdef0123456789abcd",
        "0123456789abcdef0123456789abcde\uff46",  # fullwidth small f
        "0123456789abcdef0123456789abcd\u0435f",  # Cyrillic small ie
    ],
)
def test_project_id_validation(project_id: str) -> None:
    with pytest.raises(AsmValidationError, match="project_id"):
        check_project_id(project_id)


@pytest.mark.parametrize(
    "mesh_id",
    [
        "",
        "..",
        "a/b",
        "../meshes",
        "a%2Fb",
        "a b",
        "a\n",
        "a?x=1",
        "a#b",
        "a.b",
        "x" * 65,
        "\u0430bc",  # Cyrillic small a
        "\uff41bc",  # fullwidth small a
        "\u0661\u0662",  # Arabic-Indic digits
    ],
)
def test_mesh_id_validation(mesh_id: str) -> None:
    with pytest.raises(AsmValidationError, match="mesh_id"):
        check_mesh_id(mesh_id)


@pytest.mark.parametrize("mesh_id", ["a", "A-1", "a1efdc3e-0000-4000-8000-94bef433347e", "x" * 64])
def test_mesh_id_accepted(mesh_id: str) -> None:
    assert check_mesh_id(mesh_id) == mesh_id


# --- error bodies --------------------------------------------------------------------------


def test_error_body_of_asm() -> None:
    err = error_from_response(
        400,
        {"X-Request-Id": "req-1"},
        b'{"errorCode":"ASM.01010001","errorMsg":"metadata.name is invalid"}',
    )
    assert isinstance(err, AsmBadRequestError)
    assert (err.status, err.error_code, err.error_msg, err.request_id) == (
        400,
        "ASM.01010001",
        "metadata.name is invalid",
        "req-1",
    )


def test_error_body_of_the_api_gateway_with_retry_after() -> None:
    err = error_from_response(
        429,
        {"Retry-After": "3"},
        b'{"error_code":"APIGW.0308","error_msg":"over ratelimit","request_id":"gw-9"}',
    )
    assert isinstance(err, AsmThrottledError)
    assert (err.error_code, err.error_msg, err.request_id, err.retry_after) == (
        "APIGW.0308",
        "over ratelimit",
        "gw-9",
        3.0,
    )


def test_error_body_of_iam() -> None:
    body = {"error": {"code": 401, "message": "The username or password is wrong.", "title": "x"}}
    err = error_from_response(401, {}, json.dumps(body).encode())
    assert (err.status, err.error_code, err.error_msg) == (
        401,
        "401",
        "The username or password is wrong.",
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"<html><body>\n  <h1>502 Bad Gateway</h1>\n</body></html>", "<html><body> <h1>502"),
        (b"", "Bad Gateway"),
        (b"\xff\xfe not utf-8", "\ufffd\ufffd not utf-8"),
        (b'["a json list"]', '["a json list"]'),
        (b"x" * 5000, "x" * 200 + "\u2026"),
    ],
)
def test_error_body_that_is_not_asm_json(raw: bytes, message: str) -> None:
    err = error_from_response(502, {"X-Request-Id": "r"}, raw, "Bad Gateway")
    assert isinstance(err, AsmServerError)
    assert err.error_code == ""
    assert err.error_msg.startswith(message)
    assert len(err.error_msg) <= 201


# --- transport failures --------------------------------------------------------------------


async def test_connection_refused_is_a_connection_error() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    async with AsmClient(StaticTokenAuth("t"), endpoint=endpoint) as client:
        with pytest.raises(AsmConnectionError, match="ClientConnectorError") as info:
            await client.meshes(PROJECT, REGION)
    assert isinstance(info.value.__cause__, aiohttp.ClientError)


@asynccontextmanager
async def _stub(
    handler: Callable[[web.Request], Any], seen: list[web.Request] | None = None
) -> AsyncIterator[str]:
    """A one-route aiohttp server on 127.0.0.1, for answers the simulator never gives."""

    async def record(request: web.Request) -> web.StreamResponse:
        if seen is not None:
            seen.append(request)
        response: web.StreamResponse = await handler(request)
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_redirect_is_not_followed() -> None:
    # The simulator never redirects; a stub does, to prove the token never follows a Location.
    seen: list[web.Request] = []

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": "/elsewhere"})

    async with (
        _stub(redirect, seen) as endpoint,
        AsmClient(StaticTokenAuth("t"), endpoint=endpoint) as client,
    ):
        with pytest.raises(AsmStatusError) as info:
            await client.meshes(PROJECT, REGION)
    assert info.value.status == 307
    assert [r.path for r in seen] == [f"/v1/{PROJECT}/meshes"]


async def test_forbidden_from_a_stub() -> None:
    # The simulator cannot answer 403 (no permission model), so a stub on 127.0.0.1 answers
    # this single status.
    async def forbidden(request: web.Request) -> web.Response:
        return web.json_response(
            {"errorCode": "ASM.01000002", "errorMsg": "forbidden"},
            status=403,
            headers={"X-Request-Id": "req-403"},
        )

    async with (
        _stub(forbidden) as endpoint,
        AsmClient(StaticTokenAuth("t"), endpoint=endpoint) as client,
    ):
        with pytest.raises(AsmForbiddenError) as info:
            await client.meshes(PROJECT, REGION)
    assert (info.value.error_code, info.value.request_id) == ("ASM.01000002", "req-403")


async def test_caller_session_stays_open() -> None:
    async with aiohttp.ClientSession() as session:
        async with AsmClient(StaticTokenAuth("t"), session=session):
            pass
        assert not session.closed


async def test_own_session_is_closed() -> None:
    client = AsmClient(StaticTokenAuth("t"), endpoint=f"http://127.0.0.1:{free_port()}")
    async with client:
        with pytest.raises(AsmConnectionError):
            await client.meshes(PROJECT, REGION)
        session = client._transport._session
        assert session is not None
    assert session.closed


# --- against the simulator over loopback HTTP ----------------------------------------------

TOKEN = "tok-client-tests"
AK = "AKCLIENTTEST00000001"
SK = "sk-client-test-secret"
OTHER_PROJECT = "fedcba9876543210fedcba9876543210"
CREATE_S = 5.0
DELETE_S = 2.0


def mesh_request(name: str = "mesh-a", cluster_id: str = "cluster-a") -> CreateMeshRequest:
    """The seed's example request, renamed and moved to another cluster."""
    body = json.loads((FIXTURES / "create-mesh-request.json").read_text())
    body["metadata"]["name"] = name
    body["spec"]["extendParams"]["clusters"][0]["clusterID"] = cluster_id
    return CreateMeshRequest.model_validate(body)


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[RunningSimulator]:
    """A fresh simulator accepting one static token and one AK/SK pair."""
    config = SimulatorConfig(
        create_seconds=CREATE_S,
        delete_seconds=DELETE_S,
        tokens=(TOKEN,),
        access_keys=(AccessKey(AK, SK),),
        seed=7,
    )
    async with serve(config, clock=clock) as running:
        yield running


@pytest.fixture
async def asm(sim: RunningSimulator) -> AsyncIterator[AsmClient]:
    """A client of the simulator with the static token."""
    async with AsmClient(StaticTokenAuth(TOKEN), endpoint=sim.url) as client:
        yield client


def _answers(sim: RunningSimulator) -> dict[int, int]:
    return dict(sim.state.stats.by_status)


async def test_create_201_then_show_until_running(
    asm: AsmClient, sim: RunningSimulator, clock: ManualClock
) -> None:
    created = await asm.create_mesh(PROJECT, REGION, mesh_request())
    assert created.uid
    assert created.metadata.name == "mesh-a"
    assert created.phase == MeshPhase.CREATING
    assert created.cluster_ids == ["cluster-a"]

    shown = await asm.mesh(PROJECT, REGION, created.uid)
    assert (shown.uid, shown.phase) == (created.uid, MeshPhase.CREATING)
    clock.advance(CREATE_S)
    assert (await asm.mesh(PROJECT, REGION, created.uid)).phase == MeshPhase.RUNNING
    assert sim.state.stats.creations(PROJECT, "mesh-a") == 1
    assert _answers(sim) == {200: 2, 201: 1}


async def test_list_and_find_by_name(asm: AsmClient, sim: RunningSimulator) -> None:
    assert await asm.meshes(PROJECT, REGION) == []
    first = await asm.create_mesh(PROJECT, REGION, mesh_request("mesh-a", "cluster-a"))
    second = await asm.create_mesh(PROJECT, REGION, mesh_request("mesh-b", "cluster-b"))
    sim.state.seed_mesh(PROJECT, "legacy-mesh", ["cluster-l"])
    await asm.create_mesh(OTHER_PROJECT, REGION, mesh_request("mesh-b", "cluster-o"))

    listed = await asm.meshes(PROJECT, REGION)
    assert [m.metadata.name for m in listed] == ["mesh-a", "mesh-b", "legacy-mesh"]
    found = await asm.find_mesh(PROJECT, REGION, "mesh-b")
    assert found is not None
    assert (found.uid, found.cluster_ids) == (second.uid, ["cluster-b"])
    legacy = await asm.find_mesh(PROJECT, REGION, "legacy-mesh")
    assert legacy is not None
    assert legacy.phase == MeshPhase.RUNNING
    assert await asm.find_mesh(PROJECT, REGION, "mesh-zzz") is None
    assert first.uid != second.uid


async def test_delete_then_show_answers_404(
    asm: AsmClient, sim: RunningSimulator, clock: ManualClock
) -> None:
    created = await asm.create_mesh(PROJECT, REGION, mesh_request())
    assert created.uid
    await asm.delete_mesh(PROJECT, REGION, created.uid)
    assert (await asm.mesh(PROJECT, REGION, created.uid)).phase == MeshPhase.DELETING
    clock.advance(DELETE_S)
    with pytest.raises(AsmNotFoundError) as info:
        await asm.mesh(PROJECT, REGION, created.uid)
    assert info.value.error_code == "ASM.01010002"
    assert info.value.request_id
    with pytest.raises(AsmNotFoundError):
        await asm.delete_mesh(PROJECT, REGION, created.uid)
    assert await asm.find_mesh(PROJECT, REGION, "mesh-a") is None


async def test_show_of_an_unknown_mesh_is_404(asm: AsmClient) -> None:
    with pytest.raises(AsmNotFoundError) as info:
        await asm.mesh(PROJECT, REGION, "a1efdc3e-0000-4000-8000-94bef433347e")
    assert info.value.status == 404


async def test_conflict_409_and_the_existing_mesh_is_found(
    asm: AsmClient, sim: RunningSimulator
) -> None:
    created = await asm.create_mesh(PROJECT, REGION, mesh_request())
    with pytest.raises(AsmConflictError) as info:
        await asm.create_mesh(PROJECT, REGION, mesh_request())
    assert info.value.status == 409
    assert info.value.error_code == "ASM.01010003"
    assert "mesh-a" in info.value.error_msg
    existing = await asm.find_mesh(PROJECT, REGION, "mesh-a")
    assert existing is not None
    assert existing.uid == created.uid
    assert sim.state.stats.creations(PROJECT, "mesh-a") == 1


async def test_bad_request_400_names_the_field(asm: AsmClient, sim: RunningSimulator) -> None:
    # model_construct skips validation: the only way a body the seed forbids can leave the client.
    good = mesh_request()
    bad = CreateMeshRequest.model_construct(
        api_version="v1",
        kind="Mesh",
        metadata=MeshMetadata.model_construct(name="Bad_Name-"),
        spec=good.spec,
    )
    with pytest.raises(AsmBadRequestError) as info:
        await asm.create_mesh(PROJECT, REGION, bad)
    assert info.value.error_code == "ASM.01010001"
    assert "metadata.name" in info.value.error_msg
    assert _answers(sim) == {400: 1}


async def test_unauthorized_401_is_not_retried(sim: RunningSimulator) -> None:
    async with AsmClient(StaticTokenAuth("not-a-token"), endpoint=sim.url) as client:
        with pytest.raises(AsmAuthenticationError) as info:
            await client.meshes(PROJECT, REGION)
    assert info.value.error_code == "ASM.01000001"
    assert "not-a-token" not in str(info.value)
    assert _answers(sim) == {401: 1}


async def test_throttled_429_parses_retry_after_and_is_not_retried(
    asm: AsmClient, sim: RunningSimulator
) -> None:
    sim.state.update_faults(fail_429=1.0, retry_after=7)
    with pytest.raises(AsmThrottledError) as info:
        await asm.create_mesh(PROJECT, REGION, mesh_request())
    assert (info.value.status, info.value.error_code) == (429, "ASM.01429001")
    assert info.value.retry_after == 7.0
    assert sim.state.stats.requests["create"] == 1
    assert sim.state.stats.creations(PROJECT, "mesh-a") == 0


async def test_server_error_500_before_and_after_create(
    asm: AsmClient, sim: RunningSimulator
) -> None:
    sim.state.update_faults(fail_500_before=1.0)
    with pytest.raises(AsmServerError) as before:
        await asm.create_mesh(PROJECT, REGION, mesh_request())
    assert (before.value.status, before.value.error_code) == (500, "ASM.01040001")
    assert before.value.retry_after is None
    assert await asm.find_mesh(PROJECT, REGION, "mesh-a") is None

    # A 500 may hide a created mesh (docs/asm-api.md, "A 500 that may hide a created mesh"): the
    # caller finds it by name.
    sim.state.update_faults(fail_500_before=0.0, fail_500_after=1.0)
    with pytest.raises(AsmServerError):
        await asm.create_mesh(PROJECT, REGION, mesh_request())
    assert await asm.find_mesh(PROJECT, REGION, "mesh-a") is not None
    assert sim.state.stats.requests["create"] == 2


async def test_create_failed_phase_is_reported(
    asm: AsmClient, sim: RunningSimulator, clock: ManualClock
) -> None:
    sim.state.update_faults(rules=["doomed-*=create-failed"])
    created = await asm.create_mesh(PROJECT, REGION, mesh_request("doomed-mesh"))
    assert created.uid
    clock.advance(CREATE_S)
    mesh = await asm.mesh(PROJECT, REGION, created.uid)
    assert mesh.status.known_phase is MeshPhase.CREATE_FAILED
    assert mesh.status.known_phase.failed


async def test_timeout_is_a_connection_error(sim: RunningSimulator) -> None:
    sim.state.update_faults(latency=0.5)
    async with AsmClient(StaticTokenAuth(TOKEN), endpoint=sim.url, request_timeout=0.1) as client:
        with pytest.raises(AsmConnectionError, match=r"no answer within 0\.1 s") as info:
            await client.meshes(PROJECT, REGION)
    assert isinstance(info.value.__cause__, TimeoutError)


async def test_aksk_signed_create_is_accepted(sim: RunningSimulator) -> None:
    # The simulator checks the signature over the exact body bytes, so this also proves the
    # bytes sent are the bytes signed.
    async with AsmClient(AkSkAuth(AccessKey(AK, SK)), endpoint=sim.url) as client:
        created = await client.create_mesh(PROJECT, REGION, mesh_request())
        assert created.uid
        assert (await client.mesh(PROJECT, REGION, created.uid)).uid == created.uid
        await client.delete_mesh(PROJECT, REGION, created.uid)
    assert _answers(sim) == {200: 2, 201: 1}


async def test_aksk_with_a_skewed_clock_is_refused_once(sim: RunningSimulator) -> None:
    late = datetime.now(UTC) - timedelta(minutes=16)
    async with AsmClient(AkSkAuth(AccessKey(AK, SK), now=lambda: late), endpoint=sim.url) as c:
        with pytest.raises(AsmAuthenticationError, match="15 minutes") as info:
            await c.meshes(PROJECT, REGION)
    assert SK not in str(info.value)
    assert _answers(sim) == {401: 1}


class _AlwaysStale:
    """An auth whose every credential is refused but which claims a refresh may help."""

    def __init__(self) -> None:
        self.invalidations = 0

    async def headers(self, request: Request) -> dict[str, str]:
        return {"X-Auth-Token": "stale"}

    async def invalidate(self, project_id: str) -> bool:
        self.invalidations += 1
        return True


async def test_401_is_retried_at_most_once(sim: RunningSimulator) -> None:
    auth = _AlwaysStale()
    async with AsmClient(auth, endpoint=sim.url) as client:
        with pytest.raises(AsmAuthenticationError):
            await client.meshes(PROJECT, REGION)
    assert auth.invalidations == 1
    assert _answers(sim) == {401: 2}


INJECTIONS = [
    ("project_id", "../../v3/auth/tokens#"),
    ("project_id", "0123456789abcdef0123456789abcdef/meshes/x"),
    ("project_id", "0123456789abcdef0123456789abcde\uff46"),
    ("project_id", "0123456789abcdef0123456789abcdef\n"),
    ("mesh_id", ".."),
    ("mesh_id", "../../other/meshes"),
    ("mesh_id", "x%2F..%2Fy"),
    ("mesh_id", "x?y=1"),
    ("mesh_id", "\u0430bc"),
    ("mesh_id", "x\r\nX-Injected: 1"),
]


@pytest.mark.parametrize(("field", "value"), INJECTIONS)
async def test_path_injection_sends_nothing(
    asm: AsmClient, sim: RunningSimulator, field: str, value: str
) -> None:
    project = value if field == "project_id" else PROJECT
    mesh_id = value if field == "mesh_id" else "a1efdc3e-0000-4000-8000-94bef433347e"
    calls: list[Coroutine[Any, Any, object]] = [
        asm.mesh(project, REGION, mesh_id),
        asm.delete_mesh(project, REGION, mesh_id),
    ]
    if field == "project_id":
        calls += [
            asm.meshes(project, REGION),
            asm.find_mesh(project, REGION, "mesh-a"),
            asm.create_mesh(project, REGION, mesh_request()),
        ]
    for call in calls:
        with pytest.raises(AsmValidationError, match=field):
            await call
    async with aiohttp.ClientSession() as http, http.get(f"{sim.url}/_sim/stats") as answer:
        stats = await answer.json()
    assert (stats["posts"], stats["shows"], stats["lists"], stats["deletes"]) == (0, 0, 0, 0)
    assert stats["by_status"] == {}


@pytest.mark.parametrize("region", ["ap-southeast-3.evil", "AP-1", "x"])
async def test_bad_region_or_name_sends_nothing(
    asm: AsmClient, sim: RunningSimulator, region: str
) -> None:
    with pytest.raises(AsmValidationError, match="region"):
        await asm.meshes(PROJECT, region)
    with pytest.raises(AsmValidationError, match="name"):
        await asm.find_mesh(PROJECT, REGION, "Not_A_Name")
    assert sum(sim.state.stats.requests.values()) == 0
