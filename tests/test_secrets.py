"""No credential reaches a workflow input, result, history event, search attribute or memo."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client

from meshfleet import rollouts
from meshfleet.asm.auth import AkSkAuth, Auth, IamPasswordAuth
from meshfleet.asm.signer import AccessKey
from meshfleet.models import RolloutState
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.testing import serve
from tests.helpers.fleet import history_bytes, running_worker, spec, target

AK = "HPUAQ3JCLE6WRN5XSKT9"
SK = "q7Vn2fK9sLmW4xR8tYbZ1cD6eGhJ3kP5uA0iOwEr"
IAM_USER = "release-bot"
IAM_PASSWORD = "Pa55-w0rd-for-iam-8e1f"
IAM_DOMAIN = "acme-platform"


@pytest.mark.parametrize("method", ["aksk", "iam"])
async def test_credentials_never_enter_temporal(
    client: Client, task_queue: str, method: str
) -> None:
    config = SimulatorConfig(
        create_seconds=0.2,
        access_keys=(AccessKey(AK, SK),),
        iam_users={IAM_USER: IAM_PASSWORD},
        iam_domain=IAM_DOMAIN,
    )
    fleet = [target(700 + i + (10 if method == "iam" else 0)) for i in range(6)]
    rollout_id = f"secrets-{method}"
    async with serve(config) as sim:
        auth: Auth = (
            AkSkAuth(AccessKey(AK, SK))
            if method == "aksk"
            else IamPasswordAuth(IAM_USER, IAM_PASSWORD, IAM_DOMAIN, sim.url)
        )
        async with running_worker(client, task_queue, sim.url, auth):
            await rollouts.start_rollout(client, spec(rollout_id, fleet), task_queue=task_queue)
            report = await asyncio.wait_for(rollouts.wait_for_report(client, rollout_id), 60)
        assert (report.state, report.created) == (RolloutState.COMPLETED, 6), report.failures
        issued = sim.state.tokens.issued()  # the tokens IAM handed out
    assert (method == "iam") == bool(issued)

    recorded = await history_bytes(client, f'MeshRolloutId = "{rollout_id}"')
    assert fleet[0].mesh_name.encode() in recorded  # the scan reads payloads
    for secret in [AK, SK, IAM_PASSWORD, *issued]:
        assert secret.encode() not in recorded
