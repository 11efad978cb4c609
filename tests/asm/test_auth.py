"""Auth: credentials from the environment, AK/SK headers, IAM tokens from the simulator."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web

from meshfleet.asm.auth import (
    AkSkAuth,
    Auth,
    IamPasswordAuth,
    MissingCredentialsError,
    StaticTokenAuth,
    auth_from_env,
)
from meshfleet.asm.client import AsmClient
from meshfleet.asm.errors import (
    AsmAuthenticationError,
    AsmConnectionError,
    AsmServerError,
    AsmValidationError,
)
from meshfleet.asm.models import CreateMeshRequest
from meshfleet.asm.signer import AccessKey, SignatureError, parse_authorization, verify_request
from meshfleet.asm.transport import Request, Transport
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.testing import ManualClock, RunningSimulator, serve

PROJECT = "0123456789abcdef0123456789abcdef"
REGION = "ap-southeast-3"
URL = f"http://127.0.0.1:9/v1/{PROJECT}/meshes"

TOKEN = "tok-SECRET-static-0123456789"
AK = "AKSECRETTESTAK000001"
SK = "sk-SECRET-signing-key-0123456789"
PASSWORD = "pw-SECRET-iam-password-0123"
SECRETS = (TOKEN, SK, PASSWORD)
# The create request example of the published API page (tests/asm/fixtures/README.md).
FIXTURES = Path(__file__).parent / "fixtures"


def _request_to(
    session: aiohttp.ClientSession, method: str = "GET", body: bytes = b"", project: str = PROJECT
) -> Request:
    return Request(method, URL, project, REGION, Transport(session), body)


def _assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"a secret leaked into {text!r}"


# --- auth_from_env -------------------------------------------------------------------------


def test_env_token_wins() -> None:
    auth = auth_from_env(
        {"ASM_AUTH_TOKEN": TOKEN, "HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK}
    )
    assert isinstance(auth, StaticTokenAuth)


def test_env_aksk_before_iam() -> None:
    auth = auth_from_env(
        {
            "HUAWEICLOUD_SDK_AK": AK,
            "HUAWEICLOUD_SDK_SK": SK,
            "HUAWEICLOUD_IAM_USER": "ops",
            "HUAWEICLOUD_IAM_PASSWORD": PASSWORD,
            "HUAWEICLOUD_IAM_DOMAIN": "acme",
        }
    )
    assert isinstance(auth, AkSkAuth)


def test_env_iam_with_endpoint_override() -> None:
    auth = auth_from_env(
        {
            "HUAWEICLOUD_IAM_USER": "ops",
            "HUAWEICLOUD_IAM_PASSWORD": PASSWORD,
            "HUAWEICLOUD_IAM_DOMAIN": "acme",
            "IAM_ENDPOINT": "http://127.0.0.1:1234",
        }
    )
    assert isinstance(auth, IamPasswordAuth)
    assert "http://127.0.0.1:1234" in repr(auth)


def test_env_blank_values_count_as_unset() -> None:
    auth = auth_from_env(
        {"ASM_AUTH_TOKEN": "  ", "HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK}
    )
    assert isinstance(auth, AkSkAuth)


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({}, ["ASM_AUTH_TOKEN", "HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_IAM_USER"]),
        ({"HUAWEICLOUD_SDK_AK": AK}, ["HUAWEICLOUD_SDK_SK missing"]),
        ({"HUAWEICLOUD_SDK_SK": SK}, ["HUAWEICLOUD_SDK_AK missing"]),
        (
            {"HUAWEICLOUD_IAM_USER": "ops", "HUAWEICLOUD_IAM_PASSWORD": PASSWORD},
            ["HUAWEICLOUD_IAM_DOMAIN missing"],
        ),
        (
            {"HUAWEICLOUD_IAM_PASSWORD": PASSWORD, "HUAWEICLOUD_SDK_AK": AK},
            [
                "HUAWEICLOUD_SDK_SK missing",
                "HUAWEICLOUD_IAM_USER, HUAWEICLOUD_IAM_DOMAIN missing",
            ],
        ),
        ({"ASM_AUTH_TOKEN": ""}, ["ASM_AUTH_TOKEN"]),
    ],
)
def test_env_incomplete_names_the_missing_variables(
    environ: dict[str, str], named: list[str]
) -> None:
    with pytest.raises(MissingCredentialsError) as info:
        auth_from_env(environ)
    message = str(info.value)
    for text in named:
        assert text in message
    _assert_no_secret(message, repr(info.value))
    assert isinstance(info.value, AsmValidationError)


# --- secrets stay out of repr, str and errors ----------------------------------------------


def _every_auth() -> list[Auth]:
    return [
        StaticTokenAuth(TOKEN),
        AkSkAuth(AccessKey(AK, SK)),
        IamPasswordAuth("ops", PASSWORD, "acme", "http://127.0.0.1:1"),
        auth_from_env({"ASM_AUTH_TOKEN": TOKEN}),
        auth_from_env({"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK}),
        auth_from_env(
            {
                "HUAWEICLOUD_IAM_USER": "ops",
                "HUAWEICLOUD_IAM_PASSWORD": PASSWORD,
                "HUAWEICLOUD_IAM_DOMAIN": "acme",
            }
        ),
    ]


@pytest.mark.parametrize("auth", _every_auth(), ids=lambda a: type(a).__name__)
def test_no_secret_in_repr_or_str(auth: Auth) -> None:
    assert isinstance(auth, Auth)
    _assert_no_secret(repr(auth), str(auth), f"{auth}", f"{auth!r}")


@pytest.mark.parametrize("bad", ["", f"{TOKEN}\r\nX-Evil: 1", f"{TOKEN}\n", f"\x00{TOKEN}"])
def test_static_token_refuses_control_characters_without_echoing(bad: str) -> None:
    with pytest.raises(AsmValidationError) as info:
        StaticTokenAuth(bad)
    _assert_no_secret(str(info.value), repr(info.value))


def test_iam_identity_must_be_complete() -> None:
    with pytest.raises(AsmValidationError) as info:
        IamPasswordAuth("", PASSWORD, "acme")
    _assert_no_secret(str(info.value))


# --- static token and AK/SK ----------------------------------------------------------------


async def test_static_token_header_and_no_renewal() -> None:
    auth = StaticTokenAuth(TOKEN)
    async with aiohttp.ClientSession() as session:
        headers = await auth.headers(_request_to(session))
    assert headers == {"X-Auth-Token": TOKEN}
    assert await auth.invalidate(PROJECT) is False


async def test_aksk_signs_project_header_and_verifies() -> None:
    when = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    auth = AkSkAuth(AccessKey(AK, SK), now=lambda: when)
    body = b'{"a":1}'
    async with aiohttp.ClientSession() as session:
        headers = await auth.headers(_request_to(session, "POST", body))
    assert headers["X-Project-Id"] == PROJECT
    assert headers["X-Sdk-Date"] == "20261125T120000Z"
    assert headers["Host"] == "127.0.0.1:9"
    parsed = parse_authorization(headers["Authorization"])
    assert parsed.access == AK
    assert {"content-type", "host", "x-project-id", "x-sdk-date"} <= set(parsed.signed_headers)
    path = urlsplit(URL).path
    assert verify_request("POST", path, [], headers, body, {AK: SK}, when) == AK
    tampered = headers | {"X-Project-Id": "f" * 32}
    with pytest.raises(SignatureError):
        verify_request("POST", path, [], tampered, body, {AK: SK}, when)
    assert await auth.invalidate(PROJECT) is False
    _assert_no_secret(*headers.values())


# --- IAM password tokens against the simulator ---------------------------------------------

USER = "ops-user"
DOMAIN = "acme"
OTHER_PROJECT = "fedcba9876543210fedcba9876543210"
DAY = 24 * 3600.0


@asynccontextmanager
async def _iam_sim(clock: ManualClock, ttl: float = DAY) -> AsyncIterator[RunningSimulator]:
    config = SimulatorConfig(
        create_seconds=0.0,
        iam_users={USER: PASSWORD},
        iam_domain=DOMAIN,
        token_ttl_seconds=ttl,
        seed=3,
    )
    async with serve(config, clock=clock) as sim:
        yield sim


def _iam(sim: RunningSimulator, password: str = PASSWORD, **kwargs: float) -> IamPasswordAuth:
    return IamPasswordAuth(USER, password, DOMAIN, sim.url, **kwargs)


def _request() -> CreateMeshRequest:
    body = json.loads((FIXTURES / "create-mesh-request.json").read_text())
    body["metadata"]["name"] = "mesh-a"
    return CreateMeshRequest.model_validate(body)


def _tokens_issued(sim: RunningSimulator) -> int:
    return sim.state.stats.requests["iam_token"]


async def test_iam_token_is_fetched_once_and_cached(clock: ManualClock) -> None:
    async with _iam_sim(clock) as sim, AsmClient(_iam(sim), endpoint=sim.url) as asm:
        assert await asm.meshes(PROJECT, REGION) == []
        assert await asm.meshes(PROJECT, REGION) == []
        clock.advance(DAY - 301)  # still more than the 5-minute margin before expiry
        assert await asm.meshes(PROJECT, REGION) == []
    assert _tokens_issued(sim) == 1
    assert sim.state.stats.by_operation["iam_token"] == {201: 1}
    assert dict(sim.state.stats.by_status) == {200: 3}


async def test_iam_token_per_project(clock: ManualClock) -> None:
    async with _iam_sim(clock) as sim, AsmClient(_iam(sim), endpoint=sim.url) as asm:
        await asm.meshes(PROJECT, REGION)
        await asm.meshes(OTHER_PROJECT, REGION)
        await asm.meshes(PROJECT, REGION)
        await asm.meshes(OTHER_PROJECT, REGION)
    # A token is scoped to one project (the simulator refuses it elsewhere): one per project.
    assert _tokens_issued(sim) == 2
    assert dict(sim.state.stats.by_status) == {200: 4}


async def test_concurrent_callers_share_one_fetch(clock: ManualClock) -> None:
    async with _iam_sim(clock) as sim, AsmClient(_iam(sim), endpoint=sim.url) as asm:
        await asyncio.gather(
            *(asm.meshes(PROJECT, REGION) for _ in range(10)),
            *(asm.meshes(OTHER_PROJECT, REGION) for _ in range(5)),
        )
    assert _tokens_issued(sim) == 2
    assert dict(sim.state.stats.by_status) == {200: 15}


async def test_token_within_the_margin_of_expiry_is_renewed(clock: ManualClock) -> None:
    # A 299 s token is inside the 5-minute margin from the start: every call fetches anew.
    async with _iam_sim(clock, ttl=299) as sim, AsmClient(_iam(sim), endpoint=sim.url) as asm:
        await asm.meshes(PROJECT, REGION)
        await asm.meshes(PROJECT, REGION)
    assert _tokens_issued(sim) == 2
    assert dict(sim.state.stats.by_status) == {200: 2}


async def test_expired_token_401_then_refresh_and_retry_once(clock: ManualClock) -> None:
    async with _iam_sim(clock, ttl=60) as sim:
        auth = _iam(sim, refresh_margin=0)
        async with AsmClient(auth, endpoint=sim.url) as asm:
            await asm.meshes(PROJECT, REGION)
            # The simulator's clock passes the token's expiry; the client still holds it.
            clock.advance(61)
            created = await asm.create_mesh(PROJECT, REGION, _request())
            assert created.uid
            await asm.mesh(PROJECT, REGION, created.uid)
    assert _tokens_issued(sim) == 2
    assert sim.state.stats.by_operation["create"] == {401: 1, 201: 1}
    assert sim.state.stats.creations(PROJECT, "mesh-a") == 1
    assert dict(sim.state.stats.by_status) == {200: 2, 401: 1, 201: 1}


async def test_token_lifetime_uses_the_servers_own_clock(clock: ManualClock) -> None:
    # IAM's clock is years behind this machine's: expires_at lies in our past, yet the token
    # lives 24 h measured from issued_at, so it is cached, not refetched every call.
    skewed = ManualClock(datetime(2020, 1, 1, tzinfo=UTC))
    async with _iam_sim(skewed) as sim, AsmClient(_iam(sim), endpoint=sim.url) as asm:
        await asm.meshes(PROJECT, REGION)
        await asm.meshes(PROJECT, REGION)
    assert _tokens_issued(sim) == 1


async def test_wrong_password_is_401_without_the_password(clock: ManualClock) -> None:
    wrong = "pw-SECRET-wrong-password-99"
    async with _iam_sim(clock) as sim, AsmClient(_iam(sim, wrong), endpoint=sim.url) as asm:
        with pytest.raises(AsmAuthenticationError) as info:
            await asm.meshes(PROJECT, REGION)
    assert info.value.error_msg == "The username or password is wrong."
    for text in (str(info.value), repr(info.value), info.value.describe()):
        assert wrong not in text
        _assert_no_secret(text)
    # The mesh API was never called without a token.
    assert sim.state.stats.requests["list"] == 0


async def test_iam_unreachable_is_a_connection_error(clock: ManualClock) -> None:
    async with _iam_sim(clock) as sim:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
        auth = IamPasswordAuth(USER, PASSWORD, DOMAIN, dead)
        async with AsmClient(auth, endpoint=sim.url) as asm:
            with pytest.raises(AsmConnectionError, match="IAM token request") as info:
                await asm.meshes(PROJECT, REGION)
    _assert_no_secret(str(info.value))
    assert sum(sim.state.stats.requests.values()) == 0


async def test_errors_of_every_auth_carry_no_secret(clock: ManualClock) -> None:
    async with _iam_sim(clock) as sim:
        for auth in (
            StaticTokenAuth(TOKEN),
            AkSkAuth(AccessKey(AK, SK)),
            IamPasswordAuth(USER, PASSWORD, "wrong-domain", sim.url),
        ):
            async with AsmClient(auth, endpoint=sim.url) as asm:
                with pytest.raises(AsmAuthenticationError) as info:
                    await asm.meshes(PROJECT, REGION)
            _assert_no_secret(str(info.value), repr(info.value), repr(asm), repr(auth))


async def test_wrong_password_is_asked_once_however_many_callers(clock: ManualClock) -> None:
    # IAM locks a user after repeated wrong passwords: one refusal must end all asking.
    wrong = "pw-SECRET-wrong-password-99"
    async with _iam_sim(clock) as sim, AsmClient(_iam(sim, wrong), endpoint=sim.url) as asm:
        outcomes = await asyncio.gather(
            *(asm.meshes(PROJECT, REGION) for _ in range(8)),
            *(asm.meshes(OTHER_PROJECT, REGION) for _ in range(4)),
            return_exceptions=True,
        )
        # Both projects wanted a token at once, but an unproven password is sent once at a time.
        assert _tokens_issued(sim) == 1
        third = "00000000000000000000000000000003"
        later = await asyncio.gather(
            asm.meshes(PROJECT, REGION), asm.meshes(third, REGION), return_exceptions=True
        )
    assert all(isinstance(o, AsmAuthenticationError) for o in [*outcomes, *later])
    # After IAM's refusal nobody asks again, for any project.
    assert _tokens_issued(sim) == 1
    assert sim.state.stats.requests["list"] == 0


async def test_waiters_share_a_failed_fetch() -> None:
    # The simulator's IAM never fails with 5xx, so a stub on 127.0.0.1 answers 503 and counts.
    asked = 0

    async def unavailable(request: web.Request) -> web.Response:
        nonlocal asked
        asked += 1
        await asyncio.sleep(0.05)  # keep the fetch in flight while the other callers queue
        return web.json_response({"error": {"code": 503, "message": "busy"}}, status=503)

    async with _stub_iam(unavailable) as iam_url:
        auth = IamPasswordAuth(USER, PASSWORD, DOMAIN, iam_url)
        async with aiohttp.ClientSession() as session:
            first = await asyncio.gather(
                *(auth.headers(_request_to(session)) for _ in range(6)),
                return_exceptions=True,
            )
            assert asked == 1
            # A call after the failure is a new attempt (Temporal's retry), so it asks again.
            second = await asyncio.gather(
                auth.headers(_request_to(session)), return_exceptions=True
            )
    assert asked == 2
    for outcome in [*first, *second]:
        assert isinstance(outcome, AsmServerError)
        assert (outcome.status, outcome.error_msg) == (503, "busy")
    # Each caller got its own error object (no shared, ever-growing traceback).
    assert len({id(o) for o in first}) == len(first)


async def test_once_the_password_is_proven_queued_projects_fetch_side_by_side() -> None:
    # A stub IAM on 127.0.0.1 that counts how many token requests it holds at once.
    in_flight = 0
    most = 0
    asked = 0

    async def issue(request: web.Request) -> web.Response:
        nonlocal in_flight, most, asked
        asked += 1
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.1)
        in_flight -= 1
        body = {"token": {"expires_at": "2099-01-01T00:00:00.000000Z"}}
        return web.json_response(body, status=201, headers={"X-Subject-Token": f"t{asked}"})

    projects = [f"{n:032x}" for n in range(1, 7)]
    async with _stub_iam(issue) as iam_url:
        auth = IamPasswordAuth(USER, PASSWORD, DOMAIN, iam_url)
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(auth.headers(_request_to(session, project=p)) for p in projects))
    assert asked == len(projects)
    # The first project asks alone; the five queued behind it need not stay in line after it.
    assert most >= 2, f"after the first token, fetches still went one at a time ({most})"


@asynccontextmanager
async def _stub_iam(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """An IAM stand-in on 127.0.0.1 answering token requests with ``handler``; yields its URL."""
    app = web.Application()
    app.router.add_post("/v3/auth/tokens", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
