"""Scenario 5: refused credentials fail fast, once per target, with the request id; an IAM token
that expires mid-rollout is renewed and the rollout goes on."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import pytest
from temporalio.client import Client

from meshfleet import rollouts
from meshfleet.asm.auth import AkSkAuth, Auth, IamPasswordAuth, StaticTokenAuth
from meshfleet.asm.signer import AccessKey
from meshfleet.asm.transport import Request
from meshfleet.models import RolloutState
from meshfleet.simulator.clock import ManualClock
from meshfleet.simulator.config import DEFAULT_TOKEN_TTL_SECONDS, FaultConfig, SimulatorConfig
from meshfleet.simulator.stats import CREATE, IAM_TOKEN
from tests.helpers.audit import assert_created_once, assert_reported_once, audit_rollout
from tests.helpers.eventually import eventually
from tests.helpers.fleet import SIM_TOKEN, project, running_worker, spec, target
from tests.helpers.progress import wait_for_creations
from tests.helpers.simulator_site import SimulatorSite, simulator_site

AK = "HPUAQ3JCLE6WRN5XSKT9"
SK = "q7Vn2fK9sLmW4xR8tYbZ1cD6eGhJ3kP5uA0iOwEr"
USER, PASSWORD, DOMAIN = "release-bot", "Pa55-w0rd-for-iam-8e1f", "acme-platform"
REQUEST_ID = re.compile(r"\(request id ([0-9a-f-]{36})\)")


def _config(**overrides: object) -> SimulatorConfig:
    values: dict[str, object] = {
        "create_seconds": 0.2,
        "tokens": (SIM_TOKEN,),
        "access_keys": (AccessKey(AK, SK),),
        "iam_users": {USER: PASSWORD},
        "iam_domain": DOMAIN,
    }
    values.update(overrides)
    return SimulatorConfig(**values)  # type: ignore[arg-type]


def _bad_auth(kind: str, site: SimulatorSite) -> Auth:
    if kind == "invalid-token":
        return StaticTokenAuth("sim-token-revoked-0000")
    if kind == "wrong-sk":
        return AkSkAuth(AccessKey(AK, SK[::-1]))
    return IamPasswordAuth(USER, PASSWORD + "-old", DOMAIN, site.url)


class _Asking:
    """An ``Auth`` that counts the requests waiting for their headers at this moment."""

    def __init__(self, inner: Auth) -> None:
        self.inner = inner
        self.asking = 0

    async def headers(self, request: Request) -> dict[str, str]:
        self.asking += 1
        try:
            return await self.inner.headers(request)
        finally:
            self.asking -= 1

    async def invalidate(self, project_id: str) -> bool:
        return await self.inner.invalidate(project_id)


@pytest.mark.parametrize("kind", ["invalid-token", "wrong-sk", "wrong-iam-password"])
async def test_refused_credentials_fail_every_target_fast_and_once(
    client: Client, task_queue: str, kind: str
) -> None:
    size = 12
    rollout_id = f"auth-{kind}"
    fleet = [target(80_000 + i, f"auth-{i:03d}") for i in range(size)]
    async with simulator_site(_config()) as site:
        async with running_worker(client, task_queue, site.url, _bad_auth(kind, site)):
            await rollouts.start_rollout(
                client, spec(rollout_id, fleet, window=size), task_queue=task_queue
            )
            report = await asyncio.wait_for(rollouts.wait_for_report(client, rollout_id), 30)
        stats = site.state.stats

        audit = await audit_rollout(client, rollout_id, size)
        assert_reported_once(report, audit, fleet)
        assert (report.state, report.failed) == (RolloutState.COMPLETED, size)
        # Permanent at the first answer: one attempt per target, no backoff, nothing created.
        assert {o.attempts for o in audit.outcomes.values()} == {1}
        assert max(o.seconds for o in audit.outcomes.values()) < 10
        assert sum(s.creations for s in stats.names.values()) == 0
        refused = {a.request_id for a in site.answers if a.status == 401}
        cited = set()
        for failure in report.failures:
            found = REQUEST_ID.search(failure.message or "")
            assert found, failure.message
            cited.add(found.group(1))
        assert cited <= refused
        if kind == "wrong-iam-password":
            # ASM never saw a request; IAM was asked at most once per project, never again after
            # its refusal (test_a_wrong_iam_password_is_tried_once holds it to once in all).
            projects = len({t.project_id for t in fleet})
            assert 1 <= stats.requests[IAM_TOKEN] <= projects
            assert stats.requests[CREATE] == 0
            assert {f.error_code for f in report.failures} == {"401"}
            assert len(cited) == stats.requests[IAM_TOKEN]
        else:
            # Exactly one POST per target, every one answered 401, each failure citing its own.
            assert stats.requests[CREATE] == size
            assert stats.by_operation[CREATE] == Counter({401: size})
            assert {f.error_code for f in report.failures} == {"ASM.01000001"}
            assert len(cited) == size


async def test_a_wrong_iam_password_is_tried_once(client: Client, task_queue: str) -> None:
    # Twelve projects: a lockout policy of IAM (a few wrong passwords in a row lock the user)
    # must not be reached by one rollout with one wrong password.
    size = 12
    fleet = [
        target(82_000 + i).model_copy(update={"project_id": project(200 + i)}) for i in range(size)
    ]
    async with simulator_site(_config()) as site:
        auth = _Asking(IamPasswordAuth(USER, PASSWORD + "-old", DOMAIN, site.url))
        site.hold(IAM_TOKEN)
        async with running_worker(client, task_queue, site.url, auth):
            await rollouts.start_rollout(
                client, spec("auth-once", fleet, window=size), task_queue=task_queue
            )
            # IAM answers nothing until every target's request is asking for a token, so a
            # worker that does not serialise the asking sends all of them before the refusal.
            await eventually(
                lambda: auth.asking == size and site.held >= 1,
                30,
                f"{size} requests asking for a token, one held at IAM",
            )
            site.release()
            report = await asyncio.wait_for(rollouts.wait_for_report(client, "auth-once"), 30)
    assert report.failed == size
    asked = site.state.stats.requests[IAM_TOKEN]
    assert asked == 1, f"IAM was asked {asked} times with the same wrong password"


async def test_iam_token_expiring_mid_rollout_is_renewed(client: Client, task_queue: str) -> None:
    size = 60
    fleet = [target(81_000 + i, f"ttl-{i:03d}") for i in range(size)]
    clock = ManualClock()
    # create_seconds=0: with a manual clock, meshes run at the first look instead of never.
    async with simulator_site(_config(create_seconds=0.0), clock=clock) as site:
        auth = IamPasswordAuth(USER, PASSWORD, DOMAIN, site.url)
        async with running_worker(client, task_queue, site.url, auth):
            await rollouts.start_rollout(
                client, spec("auth-ttl", fleet, window=10), task_queue=task_queue
            )
            await wait_for_creations(site.state, 20, 60)
            issued_before = site.state.stats.requests[IAM_TOKEN]
            # A day passes on the server's clock: every token the worker holds is now expired,
            # while the worker's own cache still believes them fresh.
            clock.advance(DEFAULT_TOKEN_TTL_SECONDS + 60)
            report = await asyncio.wait_for(rollouts.wait_for_report(client, "auth-ttl"), 60)
        stats = site.state.stats
        expired = [a for a in site.answers if a.status == 401 and a.operation != IAM_TOKEN]

    audit = await audit_rollout(client, "auth-ttl", size)
    assert_reported_once(report, audit, fleet)
    assert (report.created, report.failed) == (size, 0), report.failures
    assert_created_once(site.state, fleet)
    assert expired, "no request met an expired token: the expiry did not happen mid-rollout"
    # A new token per project after the expiry; not one per request.
    renewed = stats.requests[IAM_TOKEN] - issued_before
    projects = len({t.project_id for t in fleet})
    print(f"{len(expired)} requests met an expired token; {renewed} tokens renewed")
    assert projects <= renewed <= len(expired) + projects


@pytest.mark.chaos
async def test_iam_tokens_expiring_again_and_again_with_lock_storms(
    client: Client, task_queue: str
) -> None:
    size = 300
    fleet = [target(83_000 + i, f"ttl-{i:03d}") for i in range(size)]
    clock = ManualClock()
    config = _config(create_seconds=0.0, faults=FaultConfig(fail_429=0.2))
    async with simulator_site(config, clock=clock) as site:
        auth = IamPasswordAuth(USER, PASSWORD, DOMAIN, site.url)
        async with running_worker(client, task_queue, site.url, auth):
            await rollouts.start_rollout(
                client, spec("auth-ttl-long", fleet, window=30), task_queue=task_queue
            )
            for at in (50, 100, 150, 200, 250):
                await wait_for_creations(site.state, at, 120)
                clock.advance(DEFAULT_TOKEN_TTL_SECONDS + 60)
            report = await asyncio.wait_for(rollouts.wait_for_report(client, "auth-ttl-long"), 300)
        stats = site.state.stats
    audit = await audit_rollout(client, "auth-ttl-long", size)
    assert_reported_once(report, audit, fleet)
    assert (report.created, report.failed) == (size, 0), report.failures
    assert_created_once(site.state, fleet)
    # Six generations of tokens (the first and five renewals) for each of the five projects.
    assert stats.requests[IAM_TOKEN] >= 6 * len({t.project_id for t in fleet})
