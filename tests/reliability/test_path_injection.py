"""Scenario 6b: ids that would steer a URL path (``../``, ``%2e``, ``%2f``, fullwidth solidus, NUL,
look-alike letters) are refused before any request, wherever they come from: the manifest, a
forged workflow input, or the ASM API's own answer (a hostile ``metadata.uid``).

``tests/test_client.py`` proves ``AsmClient`` refuses them; here the paths into it are covered.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from aiohttp.typedefs import Middleware
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.mesh import MeshActivities
from meshfleet import rollouts
from meshfleet.asm.auth import StaticTokenAuth
from meshfleet.asm.client import AsmClient
from meshfleet.contract import failures as errors
from meshfleet.contract.payloads import (
    CREATE_MESH_WORKFLOW,
    CreateMeshActivityInput,
    WaitForMeshInput,
)
from meshfleet.models import MeshTarget
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.stats import CREATE
from tests.helpers.cli_invoke import invoke, problem_lines
from tests.helpers.eventually import eventually
from tests.helpers.fleet import SIM_TOKEN, running_worker, spec, target
from tests.helpers.processes import clean_env
from tests.helpers.simulator_site import Handler, SimulatorSite, simulator_site

PROJECT = "0123456789abcdef0123456789abcdef"
PROJECT_INJECTIONS = [
    "../../../v1/other-project",
    "0123456789abcdef/../456789abcdef",
    "%2e%2e%2f456789abcdef0123456789",
    "0123456789abcdef%2f23456789abcde",
    "0123456789abcdef\uff0f23456789abcde",  # fullwidth solidus
    "0123456789abcdef\uff0e\uff0e3456789abcde",  # fullwidth full stops
    "0123456789abcdef\x0023456789abcdef"[:32],  # NUL
    "0123456789abcdef0123456789abcde\uff46",  # fullwidth small f
    "0123456789abcdef0123456789abcd\u0435f",  # Cyrillic small ie
    "0123456789abcdef0123456789abcdef\n",
]
MESH_ID_INJECTIONS = [
    "../../../v1/other-project/meshes",
    "..",
    "%2e%2e%2fother",
    "a%2Fb",
    "a\uff0fb",  # fullwidth solidus
    "a\x00b",  # NUL
    "\u0430bc",  # Cyrillic small a
    "x?y=1",
]


def _manifest(tmp_path: Path, **field: str) -> Path:
    entry = {
        "project_id": PROJECT,
        "region": "ap-southeast-3",
        "cluster_id": "cluster-inject",
        "mesh_name": "mesh-inject",
        "node_ids": ["node-inject"],
        **field,
    }
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump({"targets": [entry]}))
    return path


def _requests(site: SimulatorSite) -> int:
    return sum(site.state.stats.requests.values())


@pytest.mark.parametrize(
    ("field", "value"),
    [("project_id", v) for v in PROJECT_INJECTIONS]
    + [("mesh_name", v) for v in ("../mesh-a", "mesh%2fa", "mesh\uff0fa", "mesh-\u0430")]
    + [("region", v) for v in ("ap-southeast-3/..", "ap-southeast-3%2f", "evil.com/ap-1")],
)
async def test_an_injected_id_in_a_manifest_never_reaches_asm(
    tmp_path: Path, field: str, value: str
) -> None:
    async with simulator_site(SimulatorConfig(tokens=(SIM_TOKEN,))) as site:
        path = _manifest(tmp_path, **{field: value})
        env = clean_env(ASM_ENDPOINT=site.url, ASM_AUTH_TOKEN=SIM_TOKEN)
        # `plan` is the command that calls ASM straight from the manifest (list calls).
        outcome = await asyncio.to_thread(invoke, "plan", str(path), env=env)
        assert (outcome.code, outcome.crashed) == (2, None), outcome
        assert any(p.startswith(f"targets[0].{field}: ") for p in problem_lines(outcome, path))
        assert _requests(site) == 0


async def test_control_a_clean_manifest_does_reach_asm(tmp_path: Path) -> None:
    # Without this, "zero requests" above could mean `plan` never talks to the simulator.
    async with simulator_site(SimulatorConfig(tokens=(SIM_TOKEN,))) as site:
        env = clean_env(ASM_ENDPOINT=site.url, ASM_AUTH_TOKEN=SIM_TOKEN)
        outcome = await asyncio.to_thread(invoke, "plan", str(_manifest(tmp_path)), env=env)
        assert outcome.code == 5, outcome
        assert _requests(site) == 1


def _hostile_uids(uids: dict[str, str]) -> Middleware:
    @web.middleware
    async def rewrite(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if request.match_info.route.name == CREATE and response.status == 201:
            assert isinstance(response, web.Response) and response.body is not None
            body = json.loads(bytes(response.body))  # type: ignore[arg-type]
            body["metadata"]["uid"] = uids[body["metadata"]["name"]]
            response.body = json.dumps(body).encode()
        return response

    return rewrite


async def test_a_hostile_mesh_uid_from_the_api_is_never_put_in_a_path(
    client: Client, task_queue: str
) -> None:
    fleet = [target(90_000 + i, f"hostile-{i:02d}") for i in range(len(MESH_ID_INJECTIONS))]
    uids = {t.mesh_name: uid for t, uid in zip(fleet, MESH_ID_INJECTIONS, strict=True)}
    config = SimulatorConfig(create_seconds=0.2, tokens=(SIM_TOKEN,))
    async with simulator_site(config, middlewares=[_hostile_uids(uids)]) as site:
        async with running_worker(client, task_queue, site.url):
            await rollouts.start_rollout(client, spec("hostile", fleet), task_queue=task_queue)
            report = await asyncio.wait_for(rollouts.wait_for_report(client, "hostile"), 60)
        stats = site.state.stats
        # Each target failed on the spot, naming the field, and no show went out with the uid.
        assert report.failed == len(fleet)
        assert {f.error_code for f in report.failures} == {errors.INVALID_TARGET}
        assert all("mesh_id" in (f.message or "") for f in report.failures)
        assert stats.requests["create"] == len(fleet)
        assert stats.requests["show"] == 0
        assert {a.operation for a in site.answers} == {CREATE}


def _forged(project_id: str) -> MeshTarget:
    # What a workflow input written by hand (not by `meshfleet start`) could carry.
    return MeshTarget.model_construct(
        project_id=project_id,
        region="ap-southeast-3",
        cluster_id="cluster-forged",
        mesh_name="mesh-forged",
        node_ids=["node-forged"],
    )


async def test_activities_refuse_injected_ids_from_a_forged_input() -> None:
    async with simulator_site(SimulatorConfig(tokens=(SIM_TOKEN,))) as site:
        async with AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=site.url) as api:
            activities = MeshActivities(api)
            env = ActivityEnvironment()
            now = datetime.now(UTC).isoformat()
            for project_id in PROJECT_INJECTIONS:
                create = CreateMeshActivityInput(target=_forged(project_id), started_at=now)
                with pytest.raises(ApplicationError) as refused:
                    await env.run(activities.create_mesh, create)
                assert (refused.value.type, refused.value.non_retryable) == (
                    errors.INVALID_TARGET,
                    True,
                )
                assert "project_id" in refused.value.message
            for project_id, uid in [(p, "a1b2") for p in PROJECT_INJECTIONS] + [
                (PROJECT, u) for u in MESH_ID_INJECTIONS
            ]:
                wait = WaitForMeshInput(
                    project_id=project_id,
                    region="ap-southeast-3",
                    mesh_name="mesh-forged",
                    uid=uid,
                    first_poll_s=0,
                    poll_interval_s=0.1,
                    deadline=now,
                )
                with pytest.raises(ApplicationError) as refused:
                    await env.run(activities.wait_for_mesh, wait)
                assert (refused.value.type, refused.value.non_retryable) == (
                    errors.INVALID_TARGET,
                    True,
                )
        assert _requests(site) == 0


async def test_a_forged_workflow_input_is_refused_by_the_worker(
    client: Client, task_queue: str
) -> None:
    # Someone with Temporal access starts a target's workflow by hand, bypassing the manifest.
    good = target(91_000)
    forged = json.loads(json.dumps({"rollout_id": "forged", "target": good.model_dump()}))
    forged["target"]["project_id"] = PROJECT_INJECTIONS[0]
    async with simulator_site(SimulatorConfig(tokens=(SIM_TOKEN,))) as site:
        async with running_worker(client, task_queue, site.url):
            handle = await client.start_workflow(
                CREATE_MESH_WORKFLOW, forged, id="forged-input", task_queue=task_queue
            )
            try:
                # The worker decodes the input, refuses it, and fails the workflow task.
                async def task_failed() -> bool:
                    return any(
                        e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
                        for e in (await handle.fetch_history()).events
                    )

                await eventually(task_failed, 30, "a failed workflow task", interval=0.1)
            finally:
                await handle.terminate("forged input")
        assert _requests(site) == 0
