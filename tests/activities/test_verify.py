"""``verify_wave`` over real HTTP: the simulator as the ASM API, a loopback server as the webhook.

Meshes are created by real POSTs; the simulator's ``leave`` rules make some of them leave
Running or vanish afterwards, as a canary that breaks after it was created would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.verify import VerifyActivities
from meshfleet.asm.auth import StaticTokenAuth
from meshfleet.asm.client import AsmClient
from meshfleet.contract.payloads import VerifyWaveInput, VerifyWaveResult
from meshfleet.models import MeshTarget
from meshfleet.simulator.config import FaultConfig, SimulatorConfig
from meshfleet.simulator.stats import LIST, SHOW
from meshfleet.simulator.testing import RunningSimulator, serve
from meshfleet.webhook import VerifyHook
from meshfleet.webhook_allowlist import ALLOWED_URLS_ENV, UrlPrefix, parse_allowed_urls
from tests.helpers.fleet import SIM_TOKEN, target
from tests.helpers.ports import free_port
from tests.helpers.webhook import Hook, serve_hook

TOKEN = "hook-token-7d1e0c"
TARGETS = [target(i) for i in range(10)]
"""Ten targets over 5 projects and 3 regions: every (project, region) pair holds at most one."""


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    faults = FaultConfig(leave=["mesh-00001=Unknown@0", "mesh-00002=gone@0"])
    config = SimulatorConfig(create_seconds=0, tokens=(SIM_TOKEN,), faults=faults)
    async with serve(config) as running:
        async with AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=running.url) as api:
            for t in TARGETS[:6]:
                await api.create_mesh(t.project_id, t.region, t.to_request())
        yield running


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    async with serve_hook() as running:
        yield running


async def _verify(
    sim: RunningSimulator,
    client: Client,
    targets: list[MeshTarget],
    *,
    webhook: str | None = None,
    skip: list[int] | None = None,
    token: str | None = TOKEN,
    allowed: tuple[UrlPrefix, ...] | None = None,
) -> VerifyWaveResult:
    """Verify ``targets``; the webhook allowed (``MESHFLEET_VERIFY_ALLOWED_URLS``) unless
    ``allowed`` says otherwise."""
    inp = VerifyWaveInput(
        rollout_id="r1",
        wave=1,
        start=0,
        end=len(targets),
        targets=targets,
        skip=skip or [],
        webhook=webhook,
    )
    async with AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=sim.url) as api:
        if allowed is None:
            allowed = parse_allowed_urls(webhook or "")
        hook = VerifyHook(token, allowed=allowed, backoff_s=(0.01, 0.01))
        activities = VerifyActivities(api, client, hook)
        result: VerifyWaveResult = await ActivityEnvironment().run(activities.verify_wave, inp)
    return result


async def test_a_mesh_gone_or_out_of_running_fails_and_the_rest_pass(
    sim: RunningSimulator, client: Client
) -> None:
    lists_before = sim.state.stats.requests[LIST]
    # Index 5 failed during the wave: verify does not read it again.
    result = await _verify(sim, client, TARGETS[:6], skip=[5])
    failed = {(f.index, f.error_code, f.phase) for f in result.failures}
    assert failed == {(1, "MeshUnknown", "Unknown"), (2, "MeshGone", None)}
    assert result.checked == 5
    assert "is gone" in next(f.message for f in result.failures if f.index == 2)
    # One list per (project, region) of the targets read, and no GET of any single mesh.
    places = {(t.project_id, t.region) for t in TARGETS[:5]}
    assert sim.state.stats.requests[LIST] - lists_before == len(places)
    assert sim.state.stats.requests[SHOW] == 0
    assert result.webhook is None


async def test_the_webhook_gets_the_running_meshes_and_the_token(
    sim: RunningSimulator, client: Client, hook: Hook
) -> None:
    result = await _verify(sim, client, [TARGETS[0], TARGETS[3]], webhook=hook.url)
    assert result.webhook is not None and result.webhook.passed
    (received,) = hook.received
    assert received.authorization == f"Bearer {TOKEN}"
    body = received.body
    assert (body["rollout_id"], body["wave"]) == ("r1", 1)
    uids = {r.name: r.uid for r in sim.state.all_meshes()}
    assert body["meshes"] == [
        {
            "project_id": t.project_id,
            "region": t.region,
            "cluster_id": t.cluster_id,
            "mesh_name": t.mesh_name,
            "uid": uids[t.mesh_name],
        }
        for t in sorted([TARGETS[0], TARGETS[3]], key=lambda t: (t.project_id, t.region))
    ]
    # The token travels in the header only: never in what the activity returns to the history.
    assert TOKEN not in json.dumps(result.model_dump())


@pytest.mark.parametrize(
    ("path", "allowed", "listed"),
    [
        # A path that only starts like the allowed one, as a string.
        ("/verify-evil", "{base}/verify", "({base}/verify)"),
        # Another port of the same host.
        ("/verify", "http://127.0.0.1:1/verify", "(http://127.0.0.1:1/verify)"),
        # Nothing allowed at all: the reason says how to allow one.
        ("/verify", "", "is not set on the worker"),
    ],
)
async def test_a_webhook_not_allowed_gets_no_request_and_fails_the_wave(
    sim: RunningSimulator, client: Client, path: str, allowed: str, listed: str
) -> None:
    async with serve_hook(path) as hook:
        base = hook.url.removesuffix(path)
        prefixes = parse_allowed_urls(allowed.format(base=base))
        result = await _verify(sim, client, [TARGETS[0]], webhook=hook.url, allowed=prefixes)
    verdict = result.webhook
    assert verdict is not None
    assert (verdict.passed, verdict.status) == (False, None)
    assert ALLOWED_URLS_ENV in verdict.excerpt
    assert listed.format(base=base) in verdict.excerpt
    assert verdict.excerpt.startswith(hook.url) and verdict.excerpt.endswith("nothing was sent")
    assert hook.requests == []  # no POST, nor any other request to that port
    assert result.checked == 1 and result.failures == []  # the re-read itself still ran


async def test_without_a_token_no_authorization_header_is_sent(
    sim: RunningSimulator, client: Client, hook: Hook
) -> None:
    await _verify(sim, client, [TARGETS[0]], webhook=hook.url, token=None)
    assert hook.received[0].authorization is None


@pytest.mark.parametrize(
    ("answers", "posts", "status", "excerpt"),
    [
        # A 5xx is asked again (bounded), then its last answer is the verdict.
        ([(500, "smoke test failed:\n  istiod down")], 3, 500, "smoke test failed: istiod down"),
        # A blip that recovers passes.
        ([(503, "busy"), (204, "")], 2, 204, ""),
        # A 4xx is the hook's considered answer: no retry.
        ([(403, "not allowed")], 1, 403, "not allowed"),
    ],
)
async def test_the_verdict_is_the_hooks_last_answer(
    sim: RunningSimulator,
    client: Client,
    hook: Hook,
    answers: list[tuple[int, str]],
    posts: int,
    status: int,
    excerpt: str,
) -> None:
    hook.answer(*answers)
    result = await _verify(sim, client, [TARGETS[0]], webhook=hook.url)
    verdict = result.webhook
    assert verdict is not None
    assert (verdict.passed, verdict.status, verdict.excerpt) == (
        200 <= status < 300,
        status,
        excerpt,
    )
    assert len(hook.received) == posts


async def test_a_hook_that_never_answers_fails_with_the_reason(
    sim: RunningSimulator, client: Client
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/verify"
    result = await _verify(sim, client, [TARGETS[0]], webhook=nobody)
    verdict = result.webhook
    assert verdict is not None
    assert (verdict.passed, verdict.status) == (False, None)
    assert "Connect" in verdict.excerpt, verdict.excerpt


async def test_a_long_body_is_cut_to_an_excerpt(
    sim: RunningSimulator, client: Client, hook: Hook
) -> None:
    hook.answer((422, "x" * 5000))
    result = await _verify(sim, client, [TARGETS[0]], webhook=hook.url)
    assert result.webhook is not None
    assert len(result.webhook.excerpt) <= 300
    assert result.webhook.excerpt.endswith("…")


async def test_an_unreachable_asm_api_is_a_retryable_error(client: Client) -> None:
    inp: dict[str, Any] = {"rollout_id": "r1", "wave": 1, "start": 0, "end": 1}
    inp["targets"] = [TARGETS[0]]
    endpoint = f"http://127.0.0.1:{free_port()}"
    async with AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=endpoint) as api:
        activities = VerifyActivities(api, client, VerifyHook())
        with pytest.raises(ApplicationError) as raised:
            await ActivityEnvironment().run(
                activities.verify_wave, VerifyWaveInput.model_validate(inp)
            )
    assert not raised.value.non_retryable
    assert "unreachable" in str(raised.value)


async def test_a_hook_that_echoes_the_token_does_not_put_it_in_the_verdict(
    sim: RunningSimulator, client: Client, hook: Hook
) -> None:
    hook.answer((401, f"invalid credentials: Bearer {TOKEN}"))
    result = await _verify(sim, client, [TARGETS[0]], webhook=hook.url)
    assert result.webhook is not None
    assert result.webhook.excerpt == "invalid credentials: Bearer [redacted]"
    assert TOKEN not in json.dumps(result.model_dump())
