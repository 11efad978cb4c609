"""The simulator's authentication over loopback HTTP: static and IAM tokens, AK/SK signatures."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from yarl import URL

from meshfleet.asm.signer import AccessKey, sign_request
from meshfleet.simulator import SimulatorConfig
from meshfleet.simulator.testing import ManualClock, RunningSimulator, serve

PROJECT = "0123456789abcdef0123456789abcdef"
OTHER_PROJECT = "fedcba9876543210fedcba9876543210"
TOKEN = "tok-SECRET-static-auth-tests"
AK = "AKSIMAUTHTEST0000001"
SK = "sk-SECRET-signing-key-auth-tests"
USER = "ops-user"
PASSWORD = "pw-SECRET-iam-auth-tests"
DOMAIN = "acme"
TTL = 600.0
SECRETS = (TOKEN, SK, PASSWORD)
KEY = AccessKey(AK, SK)


def mesh_body(name: str = "mesh-a", cluster: str = "cluster-a") -> dict[str, Any]:
    """The smallest valid create body."""
    selector = {"fieldSelector": {"key": "UID", "operator": "In", "values": ["n1"]}}
    return {
        "apiVersion": "v1",
        "kind": "Mesh",
        "metadata": {"name": name},
        "spec": {
            "type": "InCluster",
            "version": "1.18.7-r5",
            "extendParams": {
                "clusters": [{"clusterID": cluster, "installation": {"nodes": selector}}]
            },
        },
    }


def token_request(
    user: str = USER, password: str = PASSWORD, domain: str = DOMAIN, project: str = PROJECT
) -> dict[str, Any]:
    """The IAM password-token body (docs/asm-api.md, "IAM password tokens")."""
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "password": password, "domain": {"name": domain}}
                },
            },
            "scope": {"project": {"id": project}},
        }
    }


class Transcript:
    """Every answer of a test, so a test can prove no secret was ever sent back."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def assert_no_secret(self) -> None:
        """No configured secret (static token, SK, password) in any answer, body or header."""
        for text in self.texts:
            for secret in SECRETS:
                assert secret not in text, f"a secret leaked into {text!r}"


@pytest.fixture
def transcript() -> Transcript:
    """The answers seen by the test."""
    return Transcript()


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[RunningSimulator]:
    """Auth on: one static token, one AK/SK pair, one IAM user in domain acme."""
    config = SimulatorConfig(
        create_seconds=1.0,
        tokens=(TOKEN,),
        access_keys=(AccessKey(AK, SK),),
        iam_users={USER: PASSWORD},
        iam_domain=DOMAIN,
        token_ttl_seconds=TTL,
    )
    async with serve(config, clock=clock) as running:
        yield running


async def send(
    http: aiohttp.ClientSession,
    transcript: Transcript,
    method: str,
    url: str,
    headers: Mapping[str, str],
    data: bytes = b"",
) -> tuple[int, Any, Mapping[str, str]]:
    """Send exactly these headers and bytes; return status, parsed body and headers."""
    async with http.request(
        method, URL(url, encoded=True), data=data or None, headers=dict(headers)
    ) as response:
        raw = await response.read()
        assert uuid.UUID(response.headers["X-Request-Id"])
        transcript.texts.append(raw.decode() + repr(dict(response.headers)))
        return response.status, json.loads(raw) if raw else None, response.headers


def signed(
    method: str,
    url: str,
    body: bytes = b"",
    key: AccessKey | None = None,
    now: datetime | None = None,
) -> dict[str, str]:
    """Headers of a request signed the way the Huawei SDKs sign it (X-Project-Id included)."""
    headers = {"Content-Type": "application/json", "X-Project-Id": PROJECT}
    return sign_request(method, url, headers, body, key or KEY, now)


# --- static token and no credentials -------------------------------------------------------


async def test_missing_or_wrong_token_is_401_and_right_token_works(
    http: aiohttp.ClientSession, sim: RunningSimulator, transcript: Transcript
) -> None:
    url = sim.mesh_url(PROJECT)
    body = json.dumps(mesh_body()).encode()
    for headers in ({}, {"X-Auth-Token": "tok-wrong"}, {"X-Auth-Token": TOKEN + "x"}):
        status, answer, _ = await send(http, transcript, "POST", url, headers, body)
        assert (status, answer["errorCode"]) == (401, "ASM.01000001"), headers
    assert sim.state.stats.posts(PROJECT, "mesh-a") == 0
    status, _, _ = await send(http, transcript, "POST", url, {"X-Auth-Token": TOKEN}, body)
    assert status == 201
    status, _, _ = await send(http, transcript, "GET", url, {"X-Auth-Token": TOKEN})
    assert status == 200
    assert dict(sim.state.stats.by_status) == {401: 3, 201: 1, 200: 1}
    transcript.assert_no_secret()


async def test_auth_off_accepts_anyone(http: aiohttp.ClientSession, transcript: Transcript) -> None:
    async with serve(SimulatorConfig(auth_enabled=False)) as sim:
        status, _, _ = await send(http, transcript, "GET", sim.mesh_url(PROJECT), {})
    assert status == 200


async def test_auth_on_without_credentials_refuses_everything(
    http: aiohttp.ClientSession, transcript: Transcript
) -> None:
    async with serve(SimulatorConfig()) as sim:
        status, _, _ = await send(http, transcript, "GET", sim.mesh_url(PROJECT), {})
        assert status == 401
        status, _, _ = await send(
            http, transcript, "GET", sim.mesh_url(PROJECT), {"X-Auth-Token": "anything"}
        )
        assert status == 401


# --- IAM password tokens -------------------------------------------------------------------


async def issue(
    http: aiohttp.ClientSession, transcript: Transcript, sim: RunningSimulator, **kwargs: str
) -> tuple[int, Any, Mapping[str, str]]:
    """POST /v3/auth/tokens with the password body."""
    data = json.dumps(token_request(**kwargs)).encode()
    headers = {"Content-Type": "application/json;charset=utf8"}
    return await send(http, transcript, "POST", f"{sim.url}/v3/auth/tokens", headers, data)


async def test_issued_token_works_for_its_project_until_it_expires(
    http: aiohttp.ClientSession,
    sim: RunningSimulator,
    clock: ManualClock,
    transcript: Transcript,
) -> None:
    status, body, headers = await issue(http, transcript, sim)
    assert status == 201
    token = headers["X-Subject-Token"]
    assert token
    assert body["token"]["project"] == {"id": PROJECT}
    expires_at = body["token"]["expires_at"]
    assert expires_at.endswith("Z")
    expires = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    assert expires == clock.now() + timedelta(seconds=TTL)
    issued = datetime.fromisoformat(body["token"]["issued_at"].replace("Z", "+00:00"))
    assert (expires - issued).total_seconds() == TTL

    auth = {"X-Auth-Token": token}
    assert (await send(http, transcript, "GET", sim.mesh_url(PROJECT), auth))[0] == 200
    # Scoped to one project: another project's API refuses it with 401.
    status, answer, _ = await send(http, transcript, "GET", sim.mesh_url(OTHER_PROJECT), auth)
    assert (status, answer["errorCode"]) == (401, "ASM.01000001")
    assert "another project" in answer["errorMsg"]

    clock.advance(TTL - 1)
    assert (await send(http, transcript, "GET", sim.mesh_url(PROJECT), auth))[0] == 200
    clock.advance(1)
    status, answer, _ = await send(http, transcript, "GET", sim.mesh_url(PROJECT), auth)
    assert (status, answer["errorCode"]) == (401, "ASM.01000001")
    assert "expired" in answer["errorMsg"]
    assert sim.state.stats.by_operation["iam_token"] == {201: 1}
    assert sim.state.stats.requests["iam_token"] == 1
    transcript.assert_no_secret()


async def test_issued_tokens_are_distinct_per_request(
    http: aiohttp.ClientSession, sim: RunningSimulator, transcript: Transcript
) -> None:
    first = (await issue(http, transcript, sim))[2]["X-Subject-Token"]
    second = (await issue(http, transcript, sim, project=OTHER_PROJECT))[2]["X-Subject-Token"]
    assert first != second
    auth = {"X-Auth-Token": second}
    assert (await send(http, transcript, "GET", sim.mesh_url(OTHER_PROJECT), auth))[0] == 200


@pytest.mark.parametrize(
    "kwargs",
    [
        {"password": "pw-wrong"},
        {"user": "nobody"},
        {"domain": "other-account"},
        {"password": PASSWORD + "x"},
    ],
    ids=["wrong-password", "unknown-user", "wrong-domain", "longer-password"],
)
async def test_wrong_iam_credentials_are_401_without_a_token(
    http: aiohttp.ClientSession,
    sim: RunningSimulator,
    transcript: Transcript,
    kwargs: dict[str, str],
) -> None:
    status, body, headers = await issue(http, transcript, sim, **kwargs)
    assert status == 401
    assert body["error"]["code"] == 401
    assert "X-Subject-Token" not in headers
    assert sim.state.stats.by_operation["iam_token"] == {401: 1}
    assert sim.state.stats.by_status == {}  # IAM answers are not mesh API answers
    transcript.assert_no_secret()


def _without(path: str) -> dict[str, Any]:
    body = token_request()
    node = body
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    del node[keys[-1]]
    return body


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (_without("auth.scope"), "auth.scope is required"),
        (_without("auth.identity.password.user.domain"), "user.domain is required"),
        (_without("auth.identity.password.user.password"), "user.password is required"),
        (
            {"auth": {"identity": {"methods": ["token"]}, "scope": {}}},
            "methods must contain 'password'",
        ),
        (token_request(project="not-a-project"), "auth.scope.project.id"),
        ([], "auth is required"),
        ("{broken", "not valid JSON"),
    ],
)
async def test_malformed_token_requests_are_400_naming_the_field(
    http: aiohttp.ClientSession,
    sim: RunningSimulator,
    transcript: Transcript,
    body: Any,
    named: str,
) -> None:
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    status, answer, _ = await send(http, transcript, "POST", f"{sim.url}/v3/auth/tokens", {}, data)
    assert status == 400
    assert named in answer["error"]["message"]
    assert len(sim.state.tokens) == 0
    transcript.assert_no_secret()


# --- AK/SK signatures ----------------------------------------------------------------------


async def test_good_signature_is_accepted_for_every_call(
    http: aiohttp.ClientSession, sim: RunningSimulator, transcript: Transcript
) -> None:
    url = sim.mesh_url(PROJECT)
    body = json.dumps(mesh_body()).encode()
    status, created, _ = await send(http, transcript, "POST", url, signed("POST", url, body), body)
    assert status == 201
    mesh_url = sim.mesh_url(PROJECT, created["metadata"]["uid"])
    for method, target in (("GET", mesh_url), ("GET", url), ("DELETE", mesh_url)):
        status, _, _ = await send(http, transcript, method, target, signed(method, target))
        assert status == 200, (method, target)
    query_url = f"{url}?limit=2&marker=x%2Fy"
    assert (await send(http, transcript, "GET", query_url, signed("GET", query_url)))[0] == 200
    transcript.assert_no_secret()


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("wrong-sk", "signature does not match"),
        ("unknown-ak", "unknown access key"),
        ("body", "signature does not match"),
        ("path", "signature does not match"),
        ("skew-past", "15 minutes"),
        ("skew-future", "15 minutes"),
        ("no-date", "X-Sdk-Date"),
        ("project-header", "X-Project-Id"),
    ],
)
async def test_bad_signatures_are_401(
    http: aiohttp.ClientSession,
    sim: RunningSimulator,
    transcript: Transcript,
    tamper: str,
    reason: str,
) -> None:
    url = sim.mesh_url(PROJECT)
    body = json.dumps(mesh_body()).encode()
    sent = body
    target = url
    now = datetime.now(UTC)
    if tamper == "wrong-sk":
        headers = signed("POST", url, body, AccessKey(AK, SK + "-wrong"))
    elif tamper == "unknown-ak":
        headers = signed("POST", url, body, AccessKey("AKNOTKNOWN0000000001", SK))
    elif tamper == "body":
        headers = signed("POST", url, body)
        sent = json.dumps(mesh_body("mesh-evil")).encode()
    elif tamper == "path":
        headers = signed("POST", url, body)
        target = sim.mesh_url(OTHER_PROJECT)
    elif tamper == "skew-past":
        headers = signed("POST", url, body, now=now - timedelta(minutes=16))
    elif tamper == "skew-future":
        headers = signed("POST", url, body, now=now + timedelta(minutes=16))
    elif tamper == "no-date":
        headers = signed("POST", url, body)
        del headers["X-Sdk-Date"]
    else:
        other = sim.mesh_url(OTHER_PROJECT)
        headers = signed("POST", other, body)  # signed for the path, X-Project-Id says PROJECT
        target = other
    status, answer, _ = await send(http, transcript, "POST", target, headers, sent)
    assert (status, answer["errorCode"]) == (401, "ASM.01000001")
    assert reason in answer["errorMsg"]
    assert sim.state.stats.names == {}
    assert sim.state.all_meshes() == []
    transcript.assert_no_secret()


async def test_signature_within_the_allowed_skew_is_accepted(
    http: aiohttp.ClientSession, sim: RunningSimulator, transcript: Transcript
) -> None:
    url = sim.mesh_url(PROJECT)
    for minutes in (-14, 14):
        when = datetime.now(UTC) + timedelta(minutes=minutes)
        status, _, _ = await send(http, transcript, "GET", url, signed("GET", url, now=when))
        assert status == 200, minutes


async def test_no_secret_reaches_the_logs(
    http: aiohttp.ClientSession,
    sim: RunningSimulator,
    transcript: Transcript,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = sim.mesh_url(PROJECT)
    await send(http, transcript, "GET", url, {"X-Auth-Token": TOKEN})
    await send(http, transcript, "GET", url, signed("GET", url, key=AccessKey(AK, SK + "x")))
    await issue(http, transcript, sim, password=PASSWORD + "x")
    await issue(http, transcript, sim)
    for secret in SECRETS:
        assert secret not in caplog.text
    assert PASSWORD not in repr(sim.config)
    assert SK not in repr(sim.config)
    assert TOKEN not in repr(sim.config)
    assert SK not in repr(sim.state)
