"""``create_mesh`` against the simulator: after a 409 it adopts or fails by the same rule as
``meshfleet plan``, and a 404 on the POST is permanent.

Each case is seeded into the simulator, planned with ``plan_rollout`` (which lists the project
once and asks ``classify``) and then created with the real activity over real HTTP: the plan's
action and the activity's outcome must agree, case by case.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.mesh import MeshActivities
from meshfleet.asm.auth import StaticTokenAuth
from meshfleet.asm.calls import MeshApi
from meshfleet.asm.client import AsmClient
from meshfleet.asm.models import CreateMeshRequest, Mesh
from meshfleet.contract import failures as errors
from meshfleet.contract.failures import FailureDetails
from meshfleet.contract.payloads import CreateMeshActivityInput, CreateMeshResult
from meshfleet.plan import PlanAction, plan_rollout
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.stats import CREATE
from meshfleet.simulator.testing import RunningSimulator, serve
from tests.helpers.fleet import SAMPLE_TARGET, SIM_TOKEN, project

TARGET = SAMPLE_TARGET
OTHER_PROJECT = project(77)


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with serve(SimulatorConfig(create_seconds=0, tokens=(SIM_TOKEN,))) as running:
        yield running


class _ListedWithoutUid:
    """The real client, except that a list gives the target's mesh without its uid.

    The simulator always lists a uid; an ASM list entry without one has only been seen from the
    API's side of the contract (``metadata.uid`` is optional in its tables), so this one case
    strips it from the real answer. The 409 still comes from the simulator.
    """

    def __init__(self, api: MeshApi) -> None:
        self._api = api

    async def create_mesh(self, project_id: str, region: str, request: CreateMeshRequest) -> Mesh:
        return await self._api.create_mesh(project_id, region, request)

    async def mesh(self, project_id: str, region: str, mesh_id: str) -> Mesh:
        return await self._api.mesh(project_id, region, mesh_id)

    async def meshes(self, project_id: str, region: str) -> list[Mesh]:
        listed = await self._api.meshes(project_id, region)
        return [_without_uid(m) if m.metadata.name == TARGET.mesh_name else m for m in listed]


def _without_uid(mesh: Mesh) -> Mesh:
    return mesh.model_copy(update={"metadata": mesh.metadata.model_copy(update={"uid": None})})


@dataclass(frozen=True)
class Case:
    """What the project holds before the rollout, and what plan and create must both say."""

    seeded: list[tuple[str, str, list[str]]] = field(default_factory=list)
    """(project, mesh name, clusters) seeded into the simulator."""
    plan: PlanAction = "create"
    failure_type: str | None = None
    """The create's failure type; None: it succeeds (created, or the existing mesh taken when
    ``plan`` judges it in sync)."""
    uid_listed: bool = True


CASES = {
    "no mesh": Case(),
    # Seeded with the target's version and no configuration, as the target asks: in sync.
    "same name on the cluster": Case([(TARGET.project_id, "mesh-a", ["cluster-a"])], "in_sync"),
    # ASM echoes no clusters: nothing says the mesh is elsewhere, so it is ours to adopt.
    "same name, clusters not echoed": Case([(TARGET.project_id, "mesh-a", [])], "in_sync"),
    # Nothing could poll it, or later delete it by uid: not adoptable, and the plan says so.
    "same name on the cluster, listed without a uid": Case(
        [(TARGET.project_id, "mesh-a", ["cluster-a"])],
        "conflict",
        errors.MESH_WITHOUT_UID,
        uid_listed=False,
    ),
    "same name on other clusters": Case(
        [(TARGET.project_id, "mesh-a", ["cluster-b", "cluster-c"])],
        "conflict",
        errors.NAME_CONFLICT,
    ),
    "same name on other clusters, listed without a uid": Case(
        [(TARGET.project_id, "mesh-a", ["cluster-b"])],
        "conflict",
        errors.NAME_CONFLICT,
        uid_listed=False,
    ),
    "cluster held by another mesh of the project": Case(
        [(TARGET.project_id, "mesh-other", ["cluster-a"])], "conflict", errors.CLUSTER_CONFLICT
    ),
    # The one case the plan cannot foresee: it lists the target's project only, so a cluster
    # held by another project's mesh looks free until the POST answers 409.
    "cluster held by a mesh of another project": Case(
        [(OTHER_PROJECT, "mesh-elsewhere", ["cluster-a"])], "create", errors.CLUSTER_CONFLICT
    ),
}


async def _create(api: MeshApi) -> CreateMeshResult:
    inp = CreateMeshActivityInput(target=TARGET, started_at=datetime.now(UTC).isoformat())
    result: CreateMeshResult = await ActivityEnvironment().run(MeshActivities(api).create_mesh, inp)
    return result


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_plan_and_create_agree_on_what_a_project_holds(
    sim: RunningSimulator, case: Case
) -> None:
    seeded = {
        name: sim.state.seed_mesh(project_id, name, clusters).uid
        for project_id, name, clusters in case.seeded
    }
    async with AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=sim.url) as client:
        api: MeshApi = client if case.uid_listed else _ListedWithoutUid(client)
        (planned,) = await plan_rollout(api, [TARGET])
        assert planned.action == case.plan, planned.describe()
        if case.failure_type is None:
            result = await _create(api)
            failed = None
        else:
            with pytest.raises(ApplicationError) as raised:
                await _create(api)
            failed = raised.value

    assert sim.state.stats.requests[CREATE] == 1  # one POST, whatever it met
    if case.plan == "in_sync":
        # The plan's judgement of the mesh; the create meets it on 409 and takes it.
        assert failed is None
        assert (result.uid, result.adopted) == (seeded[TARGET.mesh_name], True)
        assert planned.mesh_uid == result.uid
    elif case.failure_type is None:
        assert failed is None and case.plan == "create"
        assert (result.adopted, sim.state.stats.creations(TARGET.project_id, "mesh-a")) == (
            False,
            1,
        )
    else:
        assert failed is not None
        assert (failed.type, failed.non_retryable) == (case.failure_type, True)
        details = FailureDetails.of(failed)
        assert details is not None and (details.status, details.error_code) == (
            409,
            "ASM.01010003",
        )
        assert sim.state.stats.creations(TARGET.project_id, "mesh-a") == 0


async def test_a_mesh_listed_without_a_uid_says_so() -> None:
    config = SimulatorConfig(create_seconds=0, tokens=(SIM_TOKEN,))
    async with serve(config) as sim:
        sim.state.seed_mesh(TARGET.project_id, TARGET.mesh_name, [TARGET.cluster_id])
        async with AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=sim.url) as client:
            api = _ListedWithoutUid(client)
            (planned,) = await plan_rollout(api, [TARGET])
            with pytest.raises(ApplicationError) as raised:
                await _create(api)
    assert "without a uid" in planned.describe()
    message = str(raised.value)
    assert "listed it without a uid" in message and "cannot be adopted" in message
    assert "no mesh named" not in message  # the old, false, account of this case


async def test_a_404_on_the_post_is_permanent_with_its_code_and_message(
    sim: RunningSimulator,
) -> None:
    # The simulator has no notion of a project that does not exist (any well-formed project id
    # has meshes, maybe none); its gateway answers 404 for a path no API is published on, which
    # is what a wrong base path meets: POST <endpoint>/v1/{project_id}/meshes, not found.
    async with AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=f"{sim.url}/no-such-api") as api:
        with pytest.raises(ApplicationError) as raised:
            await _create(api)

    failed = raised.value
    assert (failed.type, failed.non_retryable) == (errors.NOT_FOUND, True)
    assert errors.NOT_FOUND in errors.NON_RETRYABLE_TYPES  # the workflows' retry policies too
    details = FailureDetails.of(failed)
    assert details is not None
    assert (details.status, details.error_code, details.attempt) == (404, "APIGW.0101", 1)
    assert details.request_id
    assert "no such project or API path" in failed.message
    assert f"no API POST /no-such-api/v1/{TARGET.project_id}/meshes" in failed.message
    assert sim.state.stats.requests[CREATE] == 0  # nothing reached the meshes API
