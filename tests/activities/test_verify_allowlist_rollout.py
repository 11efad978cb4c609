"""``MESHFLEET_VERIFY_ALLOWED_URLS`` end to end: the real dev server, the production worker's
activities (wired from its settings and environment as ``python worker.py`` wires them), the
simulator over HTTP and a webhook on a loopback port.

A rollout whose webhook is outside the allowlist sends it nothing at all and halts saying why; one
inside it posts with the worker's bearer token, as before.
"""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client

from meshfleet import rollouts
from meshfleet.models import RolloutProgress, RolloutState
from meshfleet.settings import Settings
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.testing import serve
from meshfleet.webhook_allowlist import ALLOWED_URLS_ENV
from tests.helpers.fleet import SIM_TOKEN, history_bytes, running_worker, spec, unique_fleet
from tests.helpers.webhook import serve_hook
from worker import VERIFY_TOKEN_ENV, verify_hook

TOKEN = "allowlist-verify-token-41c9"


def _ended_or_halted(progress: RolloutProgress) -> bool:
    return progress.state in {RolloutState.HALTED, RolloutState.COMPLETED}


@pytest.mark.parametrize(
    ("hook_path", "allowed_path", "halts"),
    [
        # Only a string prefix of the allowed URL: not under it.
        ("/verify-evil", "/verify", True),
        ("/verify", "/verify", False),
    ],
)
async def test_a_webhook_outside_the_allowlist_gets_nothing_and_the_rollout_halts(
    client: Client, task_queue: str, hook_path: str, allowed_path: str, halts: bool
) -> None:
    rollout_id = f"allowlist-{task_queue[-8:]}-{hook_path.strip('/')}"
    fleet = unique_fleet(3, "allow")
    config = SimulatorConfig(create_seconds=0.1, tokens=(SIM_TOKEN,))
    async with serve(config) as sim, serve_hook(hook_path) as hook:
        base = hook.url.removesuffix(hook_path)
        allowed = f"{base}{allowed_path}"
        settings = Settings.model_validate(
            {"MESHFLEET_TASK_QUEUE": task_queue, ALLOWED_URLS_ENV: allowed}
        )
        poster = verify_hook(settings, {VERIFY_TOKEN_ENV: TOKEN})
        async with running_worker(client, task_queue, sim.url, hook=poster):
            started = await rollouts.start_rollout(
                client,
                spec(rollout_id, fleet, waves=[1, "100%"], verify={"webhook": hook.url}),
                task_queue=task_queue,
            )
            assert started.started
            report = await asyncio.wait_for(
                rollouts.wait_for_report(
                    client, rollout_id, interval_s=0.1, stop_when=_ended_or_halted
                ),
                60,
            )
            if halts:
                await rollouts.cancel(client, rollout_id)  # nothing of it outlives the test
        posts = [sim.state.stats.posts(t.project_id, t.mesh_name) for t in fleet]

    if halts:
        assert report.state == RolloutState.HALTED
        assert report.halt_reason == (
            f"verify webhook gave no answer: {hook.url} is not under {ALLOWED_URLS_ENV} "
            f"({allowed}): nothing was sent"
        )
        assert hook.requests == []  # not a single request reached the webhook's port
        assert posts == [1, 0, 0]  # the canary only: wave 2 was held back
    else:
        assert report.state == RolloutState.COMPLETED
        assert report.created == len(fleet)
        (received,) = hook.received  # after the canary; the last wave is not verified
        assert received.authorization == f"Bearer {TOKEN}"
        assert [m["mesh_name"] for m in received.body["meshes"]] == [fleet[0].mesh_name]
        assert posts == [1, 1, 1]
    recorded = await history_bytes(client, f'MeshRolloutId = "{rollout_id}"')
    assert fleet[0].mesh_name.encode() in recorded  # the scan does see the payloads
    assert TOKEN.encode() not in recorded
